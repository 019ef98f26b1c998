/**
 * The consumer: typed proxies over service definitions, discovery through a `Registry`,
 * routing, load balancing, cluster strategies and the consumer filter chain. One logical
 * call:
 *
 *   1. context: a child of the current one; the timeout becomes its deadline (earlier wins);
 *      condition rules may put a route tag on it (it sticks downstream)
 *   2. consumer filters (guard, telemetry) around everything below
 *   3. the cluster strategy, which for each attempt: routes (tags), drops unavailable
 *      endpoints, balances, sends with the remaining time as `peak-timeout`
 *   4. the output schema checks the answer
 */
import {
  type CallContext,
  childContext,
  createContext,
  currentContext,
  deriveContext,
  remainingTime,
} from '../core/context.js';
import { encodeContext } from '../core/context-headers.js';
import { DeadlineExceededError, ErrorCodes, PeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { Registry, RegistrySubscription } from '../registry/registry.js';
import {
  activeInstances,
  parseServiceKey,
  type ServiceInstance,
} from '../registry/service-instance.js';
import type { IdentitySource } from './caller-identity.js';
import {
  type ClusterCall,
  type ClusterStrategy,
  type ClusterStrategyName,
  FailfastStrategy,
  FailoverStrategy,
  FailsafeStrategy,
  ForkingStrategy,
} from './cluster-strategy.js';
import { Endpoint } from './endpoint.js';
import {
  type ConsistentHashOptions,
  createLoadBalancer,
  type LoadBalancer,
  type LoadBalancerName,
} from './load-balancer.js';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.js';
import { type ConditionRule, ConditionRules, type Router, TagRouter } from './router.js';
import { type ConnectionOptions, RpcConnection } from './rpc-connection.js';
import { type Invocation, type RpcFilter, runFilters } from './rpc-filter.js';
import {
  type CallOptions,
  definitionKey,
  type FailsafeServiceClient,
  type MethodSpec,
  type ServiceClient,
  type ServiceDefinition,
} from './service-definition.js';

/** Per-service client options (override the client's). */
export interface ServiceClientOptions {
  /** Group to call into (default: the definition's group). */
  group?: string;
  loadBalancer?: LoadBalancerName | LoadBalancer;
  /** For `consistent-hash`: the argument field or key function. */
  hash?: ConsistentHashOptions;
  cluster?: ClusterStrategyName;
  /** Failover: extra attempts. */
  retries?: number;
  /** Forking: parallel attempts. */
  forks?: number;
  /** Default timeout, ms. */
  timeoutMs?: number;
}

/**
 * Options of {@link RpcClient}; defaults in {@link CLIENT_DEFAULTS}. `failsafe` is only
 * chosen per service, where the proxy's types can say that results may be `undefined`.
 */
export interface RpcClientOptions extends Omit<ServiceClientOptions, 'cluster'> {
  cluster?: Exclude<ClusterStrategyName, 'failsafe'>;
  /** Where instances come from. */
  registry: Registry;
  /**
   * This application's name: sent as the caller (`peak-caller`). A provider that verifies
   * identities ignores it and takes the app from {@link RpcClientOptions.identity}.
   */
  app?: string;
  /**
   * The signed identity presented to providers (`AppIdentity` of `peakware/security`):
   * once per connection, so providers that verify callers know who calls without a
   * header anyone could set.
   */
  identity?: IdentitySource;
  /** Ramp a new instance's weight up over this long, ms. */
  warmupMs?: number;
  /** How long a call waits for the first instance list, ms (bounded by its deadline). */
  discoveryWaitMs?: number;
  retryBudget?: RetryBudgetOptions;
  /** Consumer filters, in order. */
  filters?: RpcFilter[];
  /** Routers applied after tag routing. */
  routers?: Router[];
  /** Condition rules (replace later with `setRules`). */
  rules?: ConditionRule[];
  connection?: ConnectionOptions;
  logger?: Logger;
}

/** Defaults of {@link RpcClientOptions}, written once. */
export const CLIENT_DEFAULTS = {
  loadBalancer: 'round-robin',
  cluster: 'failover',
  retries: 2,
  forks: 2,
  timeoutMs: 3000,
  warmupMs: 60_000,
  discoveryWaitMs: 3000,
} as const;

/** Validates an answer against the method's output schema (PEAK_RPC_BAD_RESPONSE). */
function checkOutput(
  spec: MethodSpec,
  raw: unknown,
  describe: string,
  serviceId: string,
  method: string,
): unknown {
  const parsed = spec.output.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new PeakError(
    ErrorCodes.RPC_BAD_RESPONSE,
    `${describe} answered something its output schema rejects: ${parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
      .join('; ')}; is the provider on another version of the definition?`,
    { details: { service: serviceId, method } },
  );
}

/** One subscribed service key: its endpoints and how calls to it are balanced. */
class Directory {
  endpoints: Endpoint[] = [];
  readonly ready: Promise<void>;
  #markReady!: () => void;
  #gotList = false;
  subscription: RegistrySubscription | undefined;

  constructor() {
    this.ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
  }

  get hasList(): boolean {
    return this.#gotList;
  }

  markReady(): void {
    this.#gotList = true;
    this.#markReady();
  }
}

interface ServicePlan {
  key: string;
  directory: Directory;
  balancer: LoadBalancer;
  cluster: ClusterStrategy;
  timeoutMs: number;
}

/** A consumer of RPC services. */
export class RpcClient {
  readonly #opts: RpcClientOptions;
  readonly #logger: Logger;
  readonly #directories = new Map<string, Directory>();
  readonly #connections = new Map<string, { conn: RpcConnection; refs: number }>();
  readonly #filters: RpcFilter[];
  readonly #routers: Router[];
  readonly #rules: ConditionRules;
  readonly #budget: RetryBudget;
  #closed = false;

  constructor(options: RpcClientOptions) {
    this.#opts = options;
    this.#logger = options.logger ?? silentLogger();
    this.#filters = [...(options.filters ?? [])];
    this.#routers = [new TagRouter(), ...(options.routers ?? [])];
    this.#rules = new ConditionRules(options.rules ?? []);
    this.#budget = new RetryBudget(options.retryBudget);
  }

  /** Adds a consumer filter (e.g. guard's) at the end of the chain. */
  use(filter: RpcFilter): this {
    this.#filters.push(filter);
    return this;
  }

  /** Replaces the condition rules at runtime (all or nothing). */
  setRules(rules: readonly ConditionRule[]): void {
    this.#rules.load(rules);
  }

  /** The typed client of a service: `client.service(inventory).deduct({...})`. */
  service<D extends ServiceDefinition>(
    def: D,
    options?: ServiceClientOptions & { cluster?: Exclude<ClusterStrategyName, 'failsafe'> },
  ): ServiceClient<D>;
  /** With `failsafe`, a failed call resolves `undefined`, and the types say so. */
  service<D extends ServiceDefinition>(
    def: D,
    options: ServiceClientOptions & { cluster: 'failsafe' },
  ): FailsafeServiceClient<D>;
  service<D extends ServiceDefinition>(
    def: D,
    options: ServiceClientOptions = {},
  ): ServiceClient<D> | FailsafeServiceClient<D> {
    const plan = this.#plan(definitionKey(def, options.group ?? this.#opts.group), options);
    const proxy: Record<string, (input: unknown, callOptions?: CallOptions) => Promise<unknown>> =
      {};
    for (const [method, spec] of Object.entries(def.methods)) {
      proxy[method] = (input, callOptions) =>
        this.#call(plan, def, method, spec, input, callOptions);
    }
    return Object.freeze(proxy) as ServiceClient<D>;
  }

  /**
   * An untyped call by key (`group/name:version`) and method, for tools like `peak rpc
   * call`; the provider still validates the argument. Not retried unless `idempotent`.
   */
  call(
    key: string,
    method: string,
    input: unknown,
    options: CallOptions & ServiceClientOptions & { idempotent?: boolean } = {},
  ): Promise<unknown> {
    const parsed = parseServiceKey(key);
    if (parsed === undefined) {
      throw new PeakError(
        ErrorCodes.USAGE,
        `'${key}' is not a service key; expected group/name:version`,
        {
          details: { input: key },
        },
      );
    }
    const plan = this.#plan(key, options);
    return this.#call(
      plan,
      { name: parsed.service, version: parsed.version },
      method,
      undefined,
      input,
      options,
      options.idempotent === true,
    );
  }

  /**
   * An untyped caller of one service key (`group/name:version`) whose directory and balancer
   * are kept across calls, for gateways that call many methods by name; the provider still
   * validates each argument. A call is not retried unless `idempotent`.
   */
  untyped(
    key: string,
    options: ServiceClientOptions & { cluster?: Exclude<ClusterStrategyName, 'failsafe'> } = {},
  ): (
    method: string,
    input: unknown,
    callOptions?: CallOptions & { idempotent?: boolean },
  ) => Promise<unknown> {
    const parsed = parseServiceKey(key);
    if (parsed === undefined) {
      throw new PeakError(
        ErrorCodes.USAGE,
        `'${key}' is not a service key; expected group/name:version`,
        {
          details: { input: key },
        },
      );
    }
    const plan = this.#plan(key, options);
    const def = { name: parsed.service, version: parsed.version };
    return (method, input, callOptions) =>
      this.#call(
        plan,
        def,
        method,
        undefined,
        input,
        callOptions,
        callOptions?.idempotent === true,
      );
  }

  /** The endpoints currently known for a key (for tools and tests). */
  endpoints(key: string): readonly Endpoint[] {
    return this.#directories.get(key)?.endpoints ?? [];
  }

  #plan(key: string, options: ServiceClientOptions): ServicePlan {
    const o = { ...this.#opts, ...options };
    const lb = o.loadBalancer ?? CLIENT_DEFAULTS.loadBalancer;
    const clusterName = o.cluster ?? CLIENT_DEFAULTS.cluster;
    let cluster: ClusterStrategy;
    switch (clusterName) {
      case 'failover':
        cluster = new FailoverStrategy(
          o.retries ?? CLIENT_DEFAULTS.retries,
          this.#budget,
          this.#logger,
        );
        break;
      case 'failfast':
        cluster = new FailfastStrategy();
        break;
      case 'failsafe':
        cluster = new FailsafeStrategy(this.#logger);
        break;
      case 'forking':
        cluster = new ForkingStrategy(o.forks ?? CLIENT_DEFAULTS.forks);
        break;
    }
    return {
      key,
      directory: this.#directory(key),
      balancer: typeof lb === 'string' ? createLoadBalancer(lb, o.hash) : lb,
      cluster,
      timeoutMs: o.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
    };
  }

  #directory(key: string): Directory {
    let dir = this.#directories.get(key);
    if (dir !== undefined) return dir;
    const created = new Directory();
    dir = created;
    this.#directories.set(key, created);
    created.subscription = this.#opts.registry.subscribe(key, (list) =>
      this.#update(created, list),
    );
    return created;
  }

  #update(dir: Directory, list: readonly ServiceInstance[]): void {
    if (this.#closed) return;
    const next: Endpoint[] = [];
    const old = new Map(dir.endpoints.map((e) => [`${e.instance.instanceId}@${e.address}`, e]));
    for (const instance of activeInstances(list)) {
      const id = `${instance.instanceId}@${instance.host}:${instance.port}`;
      const existing = old.get(id);
      if (existing !== undefined) {
        existing.instance = instance;
        old.delete(id);
        next.push(existing);
      } else {
        next.push(
          new Endpoint(
            instance,
            this.#acquire(instance.host, instance.port),
            this.#opts.warmupMs ?? CLIENT_DEFAULTS.warmupMs,
          ),
        );
      }
    }
    dir.endpoints = next;
    for (const gone of old.values()) this.#release(gone.address);
    dir.markReady();
  }

  #acquire(host: string, port: number): RpcConnection {
    const address = `${host}:${port}`;
    const entry = this.#connections.get(address);
    if (entry !== undefined) {
      entry.refs++;
      return entry.conn;
    }
    const conn = new RpcConnection(host, port, {
      ...this.#opts.connection,
      ...(this.#opts.identity === undefined ? {} : { identity: this.#opts.identity }),
      logger: this.#logger,
    });
    this.#connections.set(address, { conn, refs: 1 });
    return conn;
  }

  #release(address: string): void {
    const entry = this.#connections.get(address);
    if (entry === undefined) return;
    entry.refs--;
    if (entry.refs > 0) return;
    this.#connections.delete(address);
    // Let calls already sent finish before closing the connection.
    const conn = entry.conn;
    const closeWhenIdle = (left: number) => {
      if (conn.pending === 0 || left <= 0) conn.close();
      else setTimeout(() => closeWhenIdle(left - 1), 100).unref();
    };
    closeWhenIdle(100);
  }

  async #call(
    plan: ServicePlan,
    def: Pick<ServiceDefinition, 'name' | 'version'>,
    method: string,
    spec: MethodSpec | undefined,
    input: unknown,
    callOptions: CallOptions | undefined,
    idempotentOverride = false,
  ): Promise<unknown> {
    if (this.#closed) throw new PeakError(ErrorCodes.USAGE, 'the RPC client is closed');
    const timeoutMs = callOptions?.timeoutMs ?? spec?.timeoutMs ?? plan.timeoutMs;
    const base = currentContext();
    const init = {
      timeoutMs,
      ...(this.#opts.app === undefined ? {} : { callerApp: this.#opts.app }),
      ...(callOptions?.tags === undefined ? {} : { tags: callOptions.tags }),
    };
    let ctx: CallContext = base === undefined ? createContext(init) : childContext(base, init);
    const ruleTag = this.#rules.match(def.name, method, input, ctx);
    if (ruleTag !== undefined) ctx = deriveContext(ctx, { tags: { route: ruleTag } });
    const idempotent = spec?.idempotent === true || idempotentOverride;
    const invocation: Invocation = {
      side: 'consumer',
      service: def.name,
      version: def.version,
      method,
      args: input,
      context: ctx,
      idempotent,
    };
    const serviceId = `${def.name}:${def.version}`;
    const describe = `${serviceId}.${method}`;
    const dir = plan.directory;
    if (!dir.hasList) {
      const wait = Math.min(
        remainingTime(ctx),
        this.#opts.discoveryWaitMs ?? CLIENT_DEFAULTS.discoveryWaitMs,
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        dir.ready,
        new Promise((r) => {
          timer = setTimeout(r, Math.max(0, wait));
        }),
      ]);
      clearTimeout(timer);
    }
    const clusterCall: ClusterCall = {
      idempotent,
      describe,
      select: (exclude) => {
        let candidates: readonly Endpoint[] = dir.endpoints.filter(
          (e) => e.available && !exclude.has(e),
        );
        for (const router of this.#routers) {
          if (candidates.length === 0) break;
          candidates = router.route(candidates, invocation);
        }
        if (candidates.length === 0) {
          throw new PeakError(
            ErrorCodes.RPC_NO_PROVIDER,
            `no available provider for ${plan.key} (method ${method}): ${dir.endpoints.length} known, ${exclude.size} already tried${dir.hasList ? '' : ', no instance list received yet'}; check 'peak rpc ls'`,
            { details: { service: plan.key, method, known: dir.endpoints.length, sent: false } },
          );
        }
        return plan.balancer.select(candidates, invocation);
      },
      attempt: async (endpoint) => {
        const left = remainingTime(ctx);
        if (left <= 0) {
          throw new DeadlineExceededError(
            `${describe}: the deadline passed before the call could be sent`,
            {
              details: { sent: false },
            },
          );
        }
        endpoint.active++;
        const started = performance.now();
        let result: unknown;
        try {
          result = await endpoint.connection.call(
            serviceId,
            method,
            encodeContext(ctx),
            input,
            left,
          );
        } finally {
          endpoint.active--;
          endpoint.record(performance.now() - started);
        }
        return spec === undefined ? result : checkOutput(spec, result, describe, serviceId, method);
      },
    };
    const run = () => plan.cluster.invoke(clusterCall);
    return this.#filters.length === 0 ? run() : runFilters(this.#filters, invocation, run);
  }

  /** Closes every connection and subscription. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const dir of this.#directories.values()) dir.subscription?.close();
    for (const { conn } of this.#connections.values()) conn.close();
    this.#connections.clear();
    this.#directories.clear();
  }
}
