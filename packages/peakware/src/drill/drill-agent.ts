/**
 * The SDK half of fault drills: one agent per process follows the app's `drill/faults`
 * config item (pushed by the config center) and holds the faults aimed at this process;
 * the hooks (`rpcFaultFilter`, `sqlFaultHook`, `faultySender`, `faultyHandler`,
 * `faultyRemoteTier`, `httpFaultHandler`) ask it {@link DrillAgent.find} on every call,
 * which is one property read while no fault is active at their point.
 *
 * Guaranteed revert, each independent of the others:
 *   - every fault ends `durationMs` after this process took it up, on its own clock, with
 *     no message needed (the control plane's clock and the push do not matter);
 *   - a fault removed from the item (`peak drill stop`) ends when the change arrives;
 *   - the agent reports to the control plane every `reportEveryMs`; when no report has
 *     got through for `unreachableMs`, every fault ends (a drill never outlives its
 *     control plane);
 *   - faults live only in this process's memory and name the process incarnation (`boot`,
 *     random per start) they were aimed at: a restarted process takes none up again, even
 *     from a config snapshot file.
 * A fault that ended for any reason never comes back in this process.
 */
import { randomBytes } from 'node:crypto';
import type { ConfigEntry } from '../config/config-entry.js';
import type { ConfigSource } from '../config/config-source.js';
import { currentContext } from '../core/context.js';
import { ControlPlaneClient, type TokenSource } from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import {
  checkFaultSpec,
  FAULT_POINTS,
  FAULTS_ITEM,
  type FaultPoint,
  type FaultSpec,
} from './fault-spec.js';

/** What a hook tells the agent about one call, for matching. */
export interface FaultProbe {
  service?: string;
  method?: string;
  route?: string;
  /** Data sources the statement runs on. */
  dataSources?: readonly string[];
  /** Logical tables the statement touches. */
  tables?: readonly string[];
  /** The statement text. */
  sql?: string;
  /** True for a write (or locking read). */
  write?: boolean;
  topic?: string;
  group?: string;
  cache?: string;
  key?: string;
}

/** Why a fault is no longer active. */
export type FaultEnd = 'expired' | 'stopped' | 'unreachable' | 'closed';

/** One fault as this process holds it (local clock). */
export interface HeldFault {
  id: string;
  drill?: string;
  kind: FaultSpec['kind'];
  point: FaultPoint;
  /** When this process took it up, epoch ms (local clock). */
  since: number;
  /** When it ends at the latest, epoch ms (local clock). */
  until: number;
  /** Calls it hit so far. */
  hits: number;
  /** Set once it ended, and why. */
  ended?: { at: number; reason: FaultEnd };
}

/** What the agent sends the control plane: who it is and what it holds. */
export interface AgentReport {
  app: string;
  instanceId: string;
  boot: string;
  service?: string;
  tags: string[];
  /** Active faults. */
  active: HeldFault[];
  /** Faults ended in the last minute. */
  ended: HeldFault[];
  /** The reporter's clock, epoch ms. */
  at: number;
}

/** Options of a {@link DrillAgent}; defaults written here. */
export interface DrillAgentOptions {
  /** The app's config (a `ConfigClient`), where faults are pushed. */
  config: ConfigSource;
  /** The app (config namespace). */
  app: string;
  /** This instance's id (the one its RPC server or config client registers). */
  instanceId: string;
  /** This instance's tags (a fault may target them). */
  tags?: string[];
  /** The service it runs, for `peak drill status`. */
  service?: string;
  /** The control plane, for reports (unless `reporter` is given). */
  servers?: string | readonly string[];
  /** The app credential reports carry (it needs a `drill` grant). Default: PEAK_CREDENTIAL. */
  token?: TokenSource;
  /** Sends one report; default: POST /api/v1/drill/reports to `servers`. */
  reporter?: (report: AgentReport) => Promise<void>;
  /** How often it reports (and checks expiries), ms. Default 1000. */
  reportEveryMs?: number;
  /** Faults end when no report got through for this long, ms. Default 10 000. */
  unreachableMs?: number;
  /** The clock, epoch ms. Default Date.now. */
  clock?: () => number;
  /** Draws in [0, 1) for `scope.percent`. Default Math.random. */
  random?: () => number;
  /** The config item of the fault table. Default `drill/faults`. */
  item?: string;
  logger?: Logger;
}

interface Active {
  spec: FaultSpec;
  held: HeldFault;
  statement: RegExp | undefined;
}

const ENDED_KEPT_MS = 60_000;

/** Holds the faults aimed at this process and answers the hooks. */
export class DrillAgent {
  /** This process incarnation's id: faults name it, so a restart takes none up again. */
  readonly boot: string = randomBytes(8).toString('hex');
  readonly #o: DrillAgentOptions;
  readonly #clock: () => number;
  readonly #random: () => number;
  readonly #logger: Logger;
  readonly #reporter: (report: AgentReport) => Promise<void>;
  readonly #active = new Map<string, Active>();
  readonly #ended = new Map<string, HeldFault>();
  /** Active faults by point; a point absent from the map has none (the hooks' fast path). */
  #byPoint = new Map<FaultPoint, Active[]>();
  #lastContact: number;
  #timer: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #pending: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #listeners = new Set<(fault: HeldFault) => void>();

  constructor(options: DrillAgentOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger ?? silentLogger();
    this.#lastContact = this.#clock();
    if (options.reporter !== undefined) this.#reporter = options.reporter;
    else {
      if (options.servers === undefined)
        throw new TypeError('DrillAgent: give `servers` (the control plane) or a `reporter`');
      const http = new ControlPlaneClient({
        servers: options.servers,
        retries: 0,
        timeoutMs: 2000,
        ...(options.token === undefined ? {} : { token: options.token }),
      });
      this.#reporter = async (report) => {
        await http.post('/api/v1/drill/reports', report);
      };
    }
  }

  /** Follows the fault item and starts reporting (every `reportEveryMs`, on an unreferenced timer). */
  start(): this {
    if (this.#unwatch !== undefined || this.#closed) return this;
    const item = this.#o.item ?? FAULTS_ITEM;
    this.#unwatch = this.#o.config.watch(item, (entry) => this.#load(entry));
    const now = this.#o.config.entry(item);
    if (now !== undefined) this.#load(now);
    this.#timer = setInterval(() => void this.tick(), this.#o.reportEveryMs ?? 1000);
    this.#timer.unref();
    void this.tick();
    return this;
  }

  /**
   * Ends what expired, ends everything when the control plane has been out of reach for
   * `unreachableMs`, and sends a report. Runs on the agent's timer; tests with their own
   * clock call it directly.
   */
  async tick(): Promise<void> {
    if (this.#closed) return;
    const now = this.#clock();
    this.#expire(now);
    if (now - this.#lastContact > (this.#o.unreachableMs ?? 10_000) && this.#active.size > 0) {
      this.#logger.warn(
        { faults: [...this.#active.keys()], sinceMs: now - this.#lastContact },
        'drill: the control plane is unreachable; every fault is reverted',
      );
      for (const id of [...this.#active.keys()]) this.#end(id, 'unreachable', now);
    }
    if (this.#pending !== undefined) {
      // A report is on its way: send one more after it, with what is held then.
      this.#again = true;
      return this.#pending;
    }
    this.#pending = this.#send().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #send(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#reporter(this.report());
        this.#lastContact = this.#clock();
      } catch (err) {
        this.#logger.debug({ err: errorMessage(err) }, 'drill: report failed');
      }
    } while (this.#again && !this.#closed);
  }

  /** What this process holds now, as it reports it. */
  report(): AgentReport {
    const now = this.#clock();
    for (const [id, h] of this.#ended)
      if (now - (h.ended?.at ?? now) > ENDED_KEPT_MS) this.#ended.delete(id);
    return {
      app: this.#o.app,
      instanceId: this.#o.instanceId,
      boot: this.boot,
      ...(this.#o.service === undefined ? {} : { service: this.#o.service }),
      tags: [...(this.#o.tags ?? [])],
      active: [...this.#active.values()].map((a) => ({ ...a.held })),
      ended: [...this.#ended.values()].map((h) => ({ ...h })),
      at: now,
    };
  }

  /** The active faults. */
  active(): HeldFault[] {
    this.#expire(this.#clock());
    return [...this.#active.values()].map((a) => ({ ...a.held }));
  }

  /** Calls `listener` when a fault starts or ends here; returns the unsubscribe. */
  onChange(listener: (fault: HeldFault) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** True when some fault is active at `point` (a hook's fast path). */
  has(point: FaultPoint): boolean {
    return this.#byPoint.has(point);
  }

  /**
   * The fault to run on the current call at `point`, if one matches it and its scope
   * (caller, stress traffic, percentage) picks this call. Counts the hit.
   */
  find(point: FaultPoint, probe: FaultProbe): FaultSpec | undefined {
    const list = this.#byPoint.get(point);
    if (list === undefined) return undefined;
    const now = this.#clock();
    const ctx = currentContext();
    for (const a of list) {
      if (now >= a.held.until) {
        this.#expire(now);
        return this.find(point, probe);
      }
      if (!matches(a, probe)) continue;
      const scope = a.spec.scope;
      if (scope?.stressOnly === true && ctx?.stress !== true) continue;
      if (scope?.callers !== undefined && !scope.callers.includes(ctx?.callerApp ?? '')) continue;
      if (scope?.percent !== undefined && this.#random() * 100 >= scope.percent) continue;
      a.held.hits++;
      return a.spec;
    }
    return undefined;
  }

  /** Ends every fault and stops following the item and reporting (a final report is sent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    const now = this.#clock();
    for (const id of [...this.#active.keys()]) this.#end(id, 'closed', now);
    this.#closed = true;
    this.#unwatch?.();
    clearInterval(this.#timer);
    await this.#reporter(this.report()).catch(() => undefined);
  }

  #load(entry: ConfigEntry): void {
    if (this.#closed) return;
    let specs: unknown[] = [];
    try {
      const parsed = JSON.parse(entry.value) as { faults?: unknown };
      if (Array.isArray(parsed.faults)) specs = parsed.faults;
    } catch (err) {
      this.#logger.warn({ err: errorMessage(err) }, 'drill: the fault table is not JSON; ignored');
    }
    const now = this.#clock();
    const wanted = new Set<string>();
    for (const raw of specs) {
      const problems = checkFaultSpec(raw);
      if (problems.length > 0) {
        this.#logger.warn({ problems }, 'drill: a fault the agent cannot run is skipped');
        continue;
      }
      const spec = raw as FaultSpec;
      if (!spec.boots.includes(this.boot)) continue;
      wanted.add(spec.id);
      if (this.#active.has(spec.id) || this.#ended.has(spec.id)) continue;
      const held: HeldFault = {
        id: spec.id,
        ...(spec.drill === undefined ? {} : { drill: spec.drill }),
        kind: spec.kind,
        point: spec.point,
        since: now,
        until: now + spec.durationMs,
        hits: 0,
      };
      this.#active.set(spec.id, {
        spec,
        held,
        statement:
          spec.match?.statement === undefined ? undefined : new RegExp(spec.match.statement, 'i'),
      });
      this.#logger.info(
        { fault: spec.id, kind: spec.kind, point: spec.point },
        'drill: fault active',
      );
      this.#emit(held);
    }
    for (const id of [...this.#active.keys()]) if (!wanted.has(id)) this.#end(id, 'stopped', now);
    this.#index();
  }

  #expire(now: number): void {
    let changed = false;
    for (const [id, a] of this.#active) {
      if (now >= a.held.until) {
        this.#end(id, 'expired', now, false);
        changed = true;
      }
    }
    if (changed) this.#index();
  }

  #end(id: string, reason: FaultEnd, now: number, reindex = true): void {
    const a = this.#active.get(id);
    if (a === undefined) return;
    this.#active.delete(id);
    a.held.ended = { at: now, reason };
    this.#ended.set(id, a.held);
    this.#logger.info({ fault: id, reason }, 'drill: fault reverted');
    this.#emit(a.held);
    if (reindex) this.#index();
  }

  #emit(fault: HeldFault): void {
    for (const fn of this.#listeners) {
      try {
        fn({ ...fault });
      } catch (err) {
        this.#logger.warn({ err: errorMessage(err) }, 'drill: a change listener threw');
      }
    }
  }

  #index(): void {
    const by = new Map<FaultPoint, Active[]>();
    for (const p of FAULT_POINTS) {
      const list = [...this.#active.values()].filter((a) => a.spec.point === p);
      if (list.length > 0) by.set(p, list);
    }
    this.#byPoint = by;
  }
}

function matches(a: Active, p: FaultProbe): boolean {
  const m = a.spec.match;
  if (m === undefined) return true;
  if (m.service !== undefined && m.service !== p.service) return false;
  if (m.method !== undefined && m.method !== p.method) return false;
  if (m.route !== undefined && !(p.route ?? '').startsWith(m.route)) return false;
  if (m.dataSource !== undefined && !(p.dataSources ?? []).includes(m.dataSource)) return false;
  if (m.table !== undefined && !(p.tables ?? []).includes(m.table)) return false;
  if (a.statement !== undefined && !a.statement.test(p.sql ?? '')) return false;
  if (m.writesOnly === true && p.write !== true) return false;
  if (m.topic !== undefined && m.topic !== p.topic) return false;
  if (m.group !== undefined && m.group !== p.group) return false;
  if (m.cache !== undefined && m.cache !== p.cache) return false;
  if (m.key !== undefined && !(p.key ?? '').startsWith(m.key)) return false;
  return true;
}
