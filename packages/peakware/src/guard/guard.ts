/**
 * The guard: Sentinel-style flow control for one process. Every guarded call goes through
 * one lifecycle:
 *
 *   entry: find the resource → statistics nodes (resource, origin, entrance) → slot chain
 *          authority → system → param → flow → degrade → count pass (or block) → Entry
 *   work:  the caller waits `entry.waitMs` (queueing rules), then runs the work
 *   exit:  RT and outcome into every statistics node, then each slot's exit (breakers)
 *
 * Rules are swapped whole by `loadRules` (validated first; an invalid set changes nothing).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { currentContext } from '../core/context.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { BucketSnapshot } from '../core/sliding-window.js';
import { AuthoritySlot } from './authority-slot.js';
import { BlockError } from './block-error.js';
import { type BreakerStateChange, CircuitBreaker, DegradeSlot } from './circuit-breaker.js';
import type { ClusterTokenClient } from './cluster-token-client.js';
import { coarseNow } from './coarse-clock.js';
import { Entry, type EntryOptions, type EntryOwner } from './entry.js';
import { FlowRuleChecker, FlowSlot } from './flow-rule-checker.js';
import { ParamFlowChecker, ParamFlowSlot } from './param-flow-checker.js';
import { NO_RULES, ResourceNode, type ResourceRules } from './resource-node.js';
import type { RuleSource } from './rule-source.js';
import type { GuardRules, ResolvedGuardRules } from './rule-types.js';
import { validateRules } from './rule-validation.js';
import { StatNode } from './stat-node.js';
import { SystemSampler } from './system-sampler.js';
import { mergeSystemRules, needsSampler, SystemSlot } from './system-slot.js';

/** Options for {@link Guard}. Defaults are written here and in the README. */
export interface GuardOptions {
  /** Initial rules. Default none. */
  rules?: GuardRules;
  /** Most distinct resources; calls to resources past it pass unchecked. Default 6000. */
  maxResources?: number;
  /** Cluster token client for rules with `cluster`; without one they use the local threshold. */
  clusterClient?: ClusterTokenClient;
  /** How often CPU, event-loop lag and load are sampled for system rules, ms. Default 1000. */
  systemSampleIntervalMs?: number;
  /** How often the `metrics` event fires, ms. Default 1000. */
  metricsIntervalMs?: number;
  /** Where warnings go (refused rule sets from a source). Default: none. */
  logger?: Logger;
  /**
   * The clock every window, rule and breaker reads, epoch ms. Default: the coarse clock (a
   * ticker thread's Date.now(), see coarse-clock.ts). Tests pass a fake one to step time.
   */
  clock?: () => number;
}

/** Per-second statistics of one resource: what telemetry and the console consume. */
export interface MetricSnapshot {
  resource: string;
  /** Start of the second, epoch ms. */
  second: number;
  pass: number;
  block: number;
  success: number;
  error: number;
  /** Mean RT of calls completed in that second, ms (0 when none). */
  rtAvg: number;
  /** Smallest RT in that second, ms (0 when none). */
  rtMin: number;
  /** Calls in flight when the snapshot was taken. */
  concurrency: number;
  /**
   * RT histogram of the calls completed in that second: core's latency histogram as sparse
   * `[bucket index, count, …]` pairs (absent when none completed or the second is older
   * than the few the guard keeps). Histograms add, so percentiles merge over instances.
   */
  rtHist?: number[];
}

/** What a resource's handlers return instead of throwing. */
export interface ResourceHandlers<T = unknown> {
  /** Called instead of the work when a rule refuses the call (incl. an open breaker). */
  onBlock?: (error: BlockError, args: readonly unknown[]) => T | Promise<T>;
  /** Called when the work throws (and for blocks when there is no onBlock). */
  fallback?: (error: unknown, args: readonly unknown[]) => T | Promise<T>;
}

/** The events a guard emits. */
export interface GuardEvents {
  /** A circuit breaker changed state. */
  breaker: [change: BreakerStateChange];
  /** Per-second metrics of every active resource (fires while someone listens). */
  metrics: [snapshots: MetricSnapshot[]];
  /** A rule set from a {@link RuleSource} was refused; the rules in force stay. */
  rulesRejected: [error: Error];
}

/** The name of the inbound total node, as reported in metrics. */
export const INBOUND_RESOURCE = '__inbound__';

/** Flow control, circuit breaking, hot-parameter limits, system protection and authority. */
export class Guard extends EventEmitter<GuardEvents> implements EntryOwner {
  readonly #nodes = new Map<string, ResourceNode>();
  readonly #maxResources: number;
  readonly #clock: () => number;
  readonly #overflow: ResourceNode;
  readonly #inbound: StatNode;
  readonly #sampler: SystemSampler;
  readonly #systemSlot: SystemSlot;
  readonly #authoritySlot = new AuthoritySlot();
  readonly #paramSlot = new ParamFlowSlot();
  readonly #flowSlot: FlowSlot;
  readonly #degradeSlot = new DegradeSlot();
  readonly #entrances = new AsyncLocalStorage<string>();
  readonly #logger: Logger;
  readonly #metricsIntervalMs: number;
  #rules: ResolvedGuardRules = { flow: [], degrade: [], param: [], system: [], authority: [] };
  #raw: GuardRules = {};
  #compiled = new Map<string, ResourceRules>();
  #hasChain = false;
  #cluster: ClusterTokenClient | undefined;
  #metricsTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(options: GuardOptions = {}) {
    super();
    this.#clock = options.clock ?? coarseNow;
    this.#overflow = new ResourceNode('__overflow__', this.#clock);
    this.#inbound = new StatNode(this.#clock, true);
    this.#maxResources = options.maxResources ?? 6000;
    this.#cluster = options.clusterClient;
    this.#logger = options.logger ?? silentLogger();
    this.#metricsIntervalMs = options.metricsIntervalMs ?? 1000;
    this.#sampler = new SystemSampler(options.systemSampleIntervalMs ?? 1000);
    this.#systemSlot = new SystemSlot(this.#inbound, this.#sampler);
    this.#flowSlot = new FlowSlot(
      (resource) => this.#nodes.get(resource),
      () => this.#cluster,
    );
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'metrics') this.#startMetrics();
    });
    if (options.rules !== undefined) this.loadRules(options.rules);
  }

  /**
   * Replaces the whole rule set (kinds left out mean none of that kind). The set is
   * validated first: an invalid one throws a PeakError (PEAK_GUARD_INVALID_RULES) naming
   * the path of each problem, and the rules in force stay. Breakers and warm-up state of
   * rules that did not change carry over.
   */
  loadRules(rules: GuardRules): void {
    const resolved = validateRules(rules);
    const previous = new Map<string, unknown>();
    for (const compiled of this.#compiled.values()) {
      for (const c of compiled.flow) previous.set(`flow:${JSON.stringify(c.rule)}`, c);
      for (const b of compiled.degrade) previous.set(`degrade:${JSON.stringify(b.rule)}`, b);
      for (const p of compiled.param) previous.set(`param:${JSON.stringify(p.rule)}`, p);
    }
    const reuse = <T>(key: string, make: () => T): T => {
      const old = previous.get(key) as T | undefined;
      if (old !== undefined) {
        previous.delete(key);
        return old;
      }
      return make();
    };
    type Building = {
      authority: ResourceRules['authority'][number][];
      param: ParamFlowChecker[];
      flow: FlowRuleChecker[];
      degrade: CircuitBreaker[];
      namedOrigins: Set<string>;
      hasChain: boolean;
    };
    const building = new Map<string, Building>();
    const of = (resource: string): Building => {
      let b = building.get(resource);
      if (b === undefined) {
        b = {
          authority: [],
          param: [],
          flow: [],
          degrade: [],
          namedOrigins: new Set(),
          hasChain: false,
        };
        building.set(resource, b);
      }
      return b;
    };
    for (const r of resolved.flow) {
      const b = of(r.resource);
      b.flow.push(reuse(`flow:${JSON.stringify(r)}`, () => new FlowRuleChecker(r)));
      if (r.limitApp !== 'default' && r.limitApp !== 'other') b.namedOrigins.add(r.limitApp);
      if (r.strategy === 'chain') b.hasChain = true;
    }
    for (const r of resolved.degrade) {
      of(r.resource).degrade.push(
        reuse(
          `degrade:${JSON.stringify(r)}`,
          () => new CircuitBreaker(r, (change) => this.emit('breaker', change)),
        ),
      );
    }
    for (const r of resolved.param) {
      of(r.resource).param.push(reuse(`param:${JSON.stringify(r)}`, () => new ParamFlowChecker(r)));
    }
    for (const r of resolved.authority) of(r.resource).authority.push(r);

    // Everything is built: swap in one go.
    this.#compiled = building;
    this.#rules = resolved;
    this.#raw = structuredClone(rules);
    this.#hasChain = resolved.flow.some((r) => r.strategy === 'chain');
    for (const [resource, node] of this.#nodes) node.rules = building.get(resource) ?? NO_RULES;
    const limits = mergeSystemRules(resolved.system);
    this.#systemSlot.limits = limits;
    if (needsSampler(limits)) this.#sampler.start();
    else this.#sampler.stop();
  }

  /** The rule set in force, with defaults filled in. */
  rules(): ResolvedGuardRules {
    return structuredClone(this.#rules);
  }

  /** The rule set in force, as it was given to {@link Guard.loadRules}. */
  rawRules(): GuardRules {
    return structuredClone(this.#raw);
  }

  /**
   * Takes rules from `source` now and on every change; a refused set is logged and emitted
   * as `rulesRejected`, and the rules in force stay. Replaces an earlier source.
   */
  useRuleSource(source: RuleSource): void {
    this.#unsubscribe?.();
    const apply = (rules: GuardRules) => {
      try {
        this.loadRules(rules);
      } catch (err) {
        this.#logger.warn({ err: errorMessage(err) }, 'guard: rule set from source refused');
        this.emit('rulesRejected', err as Error);
      }
    };
    this.#unsubscribe = source.subscribe(apply);
    const current = source.current();
    if (current !== undefined) apply(current);
  }

  /** Sets (or with undefined, removes) the cluster token client. */
  setClusterClient(client: ClusterTokenClient | undefined): void {
    this.#cluster = client;
  }

  readonly #handlers = new Map<string, ResourceHandlers>();

  /** Sets the block handler and fallback {@link Guard.run} uses for `resource`. */
  setHandlers<T>(resource: string, handlers: ResourceHandlers<T>): void {
    this.#handlers.set(resource, handlers as ResourceHandlers);
  }

  #node(resource: string): ResourceNode {
    let node = this.#nodes.get(resource);
    if (node === undefined) {
      if (this.#nodes.size >= this.#maxResources) return this.#overflow;
      node = new ResourceNode(resource, this.#clock);
      node.rules = this.#compiled.get(resource) ?? NO_RULES;
      this.#nodes.set(resource, node);
    }
    return node;
  }

  /**
   * Admits one call to `resource` or throws a {@link BlockError}. The caller must wait
   * `entry.waitMs` (or `await entry.ready()`) before the work when a queueing rule spaced
   * it, and call `entry.exit(error?)` when the work ends.
   */
  entry(resource: string, options?: EntryOptions): Entry {
    const node = this.#node(resource);
    const origin = options?.origin ?? currentContext()?.callerApp ?? '';
    const inbound = options?.type === 'in';
    const entry = new Entry(this, node, origin, options?.args, inbound);
    if (origin !== '') entry.originNode = node.origin(origin);
    if (node.rules.hasChain) {
      const entrance = options?.entrance ?? this.#entrances.getStore();
      if (entrance !== undefined) {
        entry.entrance = entrance;
        entry.entranceNode = node.entrance(entrance);
      }
    }
    const now = this.#clock();
    const rules = node.rules;
    try {
      // The chain, unrolled so every call site stays monomorphic; a slot with nothing to
      // check for this resource is skipped.
      if (rules.authority.length > 0) this.#authoritySlot.entry(entry);
      if (inbound && this.#systemSlot.limits !== undefined) this.#systemSlot.entry(entry);
      if (rules.param.length > 0) this.#paramSlot.entry(entry, now);
      if (rules.flow.length > 0) this.#flowSlot.entry(entry, now);
      if (rules.degrade.length > 0) this.#degradeSlot.entry(entry, now);
    } catch (err) {
      entry.done = true;
      this.#release(entry);
      node.addBlock(now);
      entry.originNode?.addBlock(now);
      entry.entranceNode?.addBlock(now);
      if (inbound) this.#inbound.addBlock(now);
      throw err;
    }
    node.addPass(now);
    entry.originNode?.addPass(now);
    entry.entranceNode?.addPass(now);
    if (inbound) this.#inbound.addPass(now);
    entry.startedAt = now + entry.waitMs;
    return entry;
  }

  /** @internal The guard's clock, epoch ms (what {@link Entry.ready} waits against). */
  now(): number {
    return this.#clock();
  }

  /** @internal Called by {@link Entry.exit}. */
  exitEntry(entry: Entry, error: unknown): void {
    const now = this.#clock();
    const rt = Math.max(0, now - entry.startedAt);
    // A block from a nested resource is not this resource's failure (as in Sentinel).
    const failure = error instanceof BlockError ? undefined : error;
    const failed = failure !== undefined;
    entry.node.addComplete(rt, failed, now);
    entry.originNode?.addComplete(rt, failed, now);
    entry.entranceNode?.addComplete(rt, failed, now);
    if (entry.inbound) this.#inbound.addComplete(rt, failed, now);
    this.#release(entry);
    this.#degradeSlot.exit(entry, rt, failure, now);
  }

  #release(entry: Entry): void {
    const held = entry.paramHeld;
    if (held !== undefined) for (const s of held) s.inflight--;
  }

  /**
   * Runs `fn` as one guarded call: entry, the queueing wait, the work, exit. A refused call
   * goes to the resource's `onBlock` (or `fallback`) handler if set, else throws the
   * BlockError; a failed call goes to `fallback` if set, else rethrows.
   */
  async run<T>(resource: string, fn: () => T | Promise<T>, options?: EntryOptions): Promise<T> {
    let entry: Entry;
    try {
      entry = this.entry(resource, options);
    } catch (err) {
      const handlers = this.#handlers.get(resource) as ResourceHandlers<T> | undefined;
      const args = options?.args ?? [];
      if (err instanceof BlockError && handlers?.onBlock !== undefined)
        return handlers.onBlock(err, args);
      if (handlers?.fallback !== undefined) return handlers.fallback(err, args);
      throw err;
    }
    if (entry.waitMs > 0) await entry.ready();
    try {
      const work =
        this.#hasChain && this.#entrances.getStore() === undefined
          ? this.#entrances.run(options?.entrance ?? resource, fn)
          : fn();
      // Synchronous work needs no extra tick: exit at once.
      if (!isThenable(work)) {
        entry.exit();
        return work;
      }
      const value = await work;
      entry.exit();
      return value;
    } catch (err) {
      entry.exit(err);
      const handlers = this.#handlers.get(resource) as ResourceHandlers<T> | undefined;
      if (handlers?.fallback !== undefined) return handlers.fallback(err, options?.args ?? []);
      throw err;
    }
  }

  /** Runs `fn` with `name` as the entrance chain rules match (`strategy: 'chain'`). */
  withEntrance<R>(name: string, fn: () => R): R {
    return this.#entrances.run(name, fn);
  }

  /** The state of the breakers of `resource`, in rule order. */
  breakerStates(resource: string): string[] {
    return (this.#compiled.get(resource)?.degrade ?? []).map((b) => b.state);
  }

  /** Live statistics of one resource over the last second, or undefined if never entered. */
  stats(resource: string):
    | {
        passQps: number;
        blockQps: number;
        successQps: number;
        errorQps: number;
        rtAvg: number;
        concurrency: number;
      }
    | undefined {
    const node = resource === INBOUND_RESOURCE ? this.#inbound : this.#nodes.get(resource);
    if (node === undefined) return undefined;
    node.flush();
    const w = node.second;
    return {
      passQps: w.pass(),
      blockQps: w.block(),
      successQps: w.success(),
      errorQps: w.error(),
      rtAvg: Number.isNaN(w.rtAvg()) ? 0 : w.rtAvg(),
      concurrency: node.concurrency,
    };
  }

  /** The latest system samples (CPU, event-loop lag, load); zeros while no rule needs them. */
  systemSample(): { cpuUsage: number; eventLoopLagMs: number; load: number } {
    return { ...this.#sampler.sample };
  }

  /**
   * Per-second snapshots for every resource with traffic (and the inbound total as
   * {@link INBOUND_RESOURCE}): of the last complete second, or with `since` (epoch ms) of
   * every complete second that started after it (up to the last 60), oldest first.
   */
  metrics(since?: number): MetricSnapshot[] {
    const out: MetricSnapshot[] = [];
    const push = (resource: string, node: StatNode, b: BucketSnapshot) => {
      if (b.pass + b.block + b.success + b.error === 0) return;
      const done = b.success + b.error;
      const rtHist = done === 0 ? undefined : node.rtHistograms?.sparse(b.start);
      out.push({
        resource,
        second: b.start,
        pass: b.pass,
        block: b.block,
        success: b.success,
        error: b.error,
        rtAvg: done === 0 ? 0 : b.rtSum / done,
        rtMin: Number.isNaN(b.rtMin) ? 0 : b.rtMin,
        concurrency: node.concurrency,
        ...(rtHist === undefined || rtHist.length === 0 ? {} : { rtHist }),
      });
    };
    const add = (resource: string, node: StatNode) => {
      node.flush();
      if (since === undefined) {
        const b = node.minute.previous();
        if (b !== undefined) push(resource, node, b);
        return;
      }
      for (const b of node.minute.snapshots(true)) if (b.start > since) push(resource, node, b);
    };
    for (const [resource, node] of this.#nodes) add(resource, node);
    add(INBOUND_RESOURCE, this.#inbound);
    return out.sort((a, b) => a.second - b.second);
  }

  #startMetrics(): void {
    if (this.#metricsTimer !== undefined) return;
    // Each tick ships every complete second not shipped yet, so a late timer loses nothing.
    const now = this.#clock();
    let shipped = now - (now % 1000) - 1;
    this.#metricsTimer = setInterval(() => {
      const snapshots = this.metrics(shipped);
      if (snapshots.length === 0) return;
      shipped = snapshots[snapshots.length - 1]!.second;
      if (this.listenerCount('metrics') > 0) this.emit('metrics', snapshots);
    }, this.#metricsIntervalMs);
    this.#metricsTimer.unref();
  }

  /** Stops timers (metrics, system sampling) and the rule source subscription. */
  close(): void {
    if (this.#metricsTimer !== undefined) clearInterval(this.#metricsTimer);
    this.#metricsTimer = undefined;
    this.#sampler.stop();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#cluster?.close();
  }
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
