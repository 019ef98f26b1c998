/**
 * The services a provider hosts, and the part of a call's lifecycle both access paths (TCP
 * and HTTP/JSON) share:
 *
 *   1. refuse over `maxInFlight` (PEAK_RPC_OVERLOADED: the call did not run)
 *   2. find service and method (PEAK_RPC_UNKNOWN_SERVICE / _METHOD); a bare service name
 *      means its newest hosted version
 *   3. with `identity`: the caller is the app its verified identity names (presented once per
 *      connection, or `authorization: Bearer` over HTTP), never the `peak-caller` header;
 *      no, an expired or a refused identity → PEAK_UNAUTHENTICATED when it is required
 *   4. decode the context from the headers; refuse work whose deadline passed
 *      (PEAK_DEADLINE_EXCEEDED: the method never starts)
 *   5. validate the argument (PEAK_RPC_BAD_ARGUMENTS)
 *   6. provider filters, then the method, in a child context carrying the remaining time
 */
import { assertDeadline, childContext, runWithContext } from '../core/context.js';
import { ContextHeaders, decodeContext, type HeaderMap } from '../core/context-headers.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import {
  type PresentedCaller,
  type ProviderIdentityOptions,
  verifiedCallerApp,
} from './caller-identity.js';
import { type Invocation, type RpcFilter, runFilters } from './rpc-filter.js';
import type {
  ProviderCall,
  ServiceDefinition,
  ServiceImplementation,
} from './service-definition.js';

interface Hosted {
  def: ServiceDefinition;
  impl: Record<
    string,
    (input: unknown, ctx: ReturnType<typeof childContext>, call: ProviderCall) => unknown
  >;
}

/** The signal of a call whose caller cannot go away (a direct `invoke`): never aborts. */
const NEVER = new AbortController().signal;

/** A provider's hosted services and filters, and one call through them. */
export class HostedServices {
  readonly #instanceId: string;
  readonly #maxInFlight: number;
  readonly #services = new Map<string, Hosted>();
  readonly #latest = new Map<string, Hosted>();
  readonly #filters: RpcFilter[];
  readonly #identity: ProviderIdentityOptions | undefined;
  #inFlight = 0;

  /**
   * `instanceId` names the provider in refusals; `filters` run in order around each method;
   * with `identity` the caller is the verified app only.
   */
  constructor(
    instanceId: string,
    maxInFlight: number,
    filters: readonly RpcFilter[],
    identity?: ProviderIdentityOptions,
  ) {
    this.#instanceId = instanceId;
    this.#maxInFlight = maxInFlight;
    this.#filters = [...filters];
    this.#identity = identity;
  }

  /** Hosts an implementation of a service definition; throws PEAK_USAGE for a missing method. */
  add<D extends ServiceDefinition>(def: D, impl: ServiceImplementation<D>): void {
    for (const method of Object.keys(def.methods)) {
      if (typeof (impl as Record<string, unknown>)[method] !== 'function') {
        throw new PeakError(
          ErrorCodes.USAGE,
          `the implementation of ${def.id} has no function for method '${method}'`,
          { details: { input: method } },
        );
      }
    }
    const hosted: Hosted = { def, impl: impl as unknown as Hosted['impl'] };
    this.#services.set(def.id, hosted);
    const prev = this.#latest.get(def.name);
    if (
      prev === undefined ||
      prev.def.version.localeCompare(def.version, 'en', { numeric: true }) < 0
    ) {
      this.#latest.set(def.name, hosted);
    }
  }

  /** Adds a provider-side filter at the end of the chain. */
  use(filter: RpcFilter): void {
    this.#filters.push(filter);
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The hosted definitions, one per `name:version`, in the order they were added. */
  definitions(): ServiceDefinition[] {
    return [...this.#services.values()].map((h) => h.def);
  }

  /**
   * Runs one call through the lifecycle in the file header. `service` is `name:version`, or
   * a bare name for the newest hosted version; `presented` is what the caller showed of its
   * identity (when the provider verifies identities); `signal` aborts when the caller is gone
   * (the method sees it as `call.signal`).
   */
  async invoke(
    service: string,
    method: string,
    headers: HeaderMap,
    args: unknown,
    remote?: string,
    presented?: PresentedCaller,
    signal: AbortSignal = NEVER,
  ): Promise<unknown> {
    if (this.#inFlight >= this.#maxInFlight) {
      throw new PeakError(
        ErrorCodes.RPC_OVERLOADED,
        `provider ${this.#instanceId} has ${this.#inFlight} calls in flight (maxInFlight ${this.#maxInFlight}); the call did not run, retry elsewhere`,
        { details: { sent: false } },
      );
    }
    const hosted = this.#services.get(service) ?? this.#latest.get(service);
    if (hosted === undefined) {
      throw new PeakError(
        ErrorCodes.RPC_UNKNOWN_SERVICE,
        `provider ${this.#instanceId} does not host service '${service}'; it hosts: ${[...this.#services.keys()].join(', ') || 'nothing'}`,
        { details: { service, sent: false } },
      );
    }
    const spec = Object.hasOwn(hosted.def.methods, method) ? hosted.def.methods[method] : undefined;
    const fn = spec === undefined ? undefined : hosted.impl[method];
    if (spec === undefined || fn === undefined) {
      throw new PeakError(
        ErrorCodes.RPC_UNKNOWN_METHOD,
        `service ${hosted.def.id} has no method '${method}'; it has: ${Object.keys(hosted.def.methods).join(', ')}`,
        { details: { service: hosted.def.id, method, sent: false } },
      );
    }
    let caller: string | undefined;
    if (this.#identity !== undefined) {
      caller = verifiedCallerApp(
        this.#identity,
        presented,
        this.#instanceId,
        `${hosted.def.id}.${method}`,
      );
      // The caller is who the identity proves, never who a header says.
      if (caller === undefined) delete headers[ContextHeaders.caller];
      else headers[ContextHeaders.caller] = caller;
    }
    const ctx = childContext(decodeContext(headers));
    assertDeadline(`${hosted.def.id}.${method}`, ctx);
    const parsed = spec.input.safeParse(args);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 5).map((i) => ({
        path: i.path.map(String).join('.'),
        message: i.message,
      }));
      throw new PeakError(
        ErrorCodes.RPC_BAD_ARGUMENTS,
        `arguments of ${hosted.def.id}.${method} failed its schema: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
        { details: { service: hosted.def.id, method, issues, sent: false } },
      );
    }
    this.#inFlight++;
    try {
      const input = parsed.data;
      return await runWithContext(ctx, () => {
        const call = async () =>
          fn(input, ctx, { signal, ...(remote === undefined ? {} : { remote }) });
        if (this.#filters.length === 0) return call();
        const invocation: Invocation = {
          side: 'provider',
          service: hosted.def.name,
          version: hosted.def.version,
          method,
          args: input,
          context: ctx,
          idempotent: spec.idempotent === true,
          ...(remote === undefined ? {} : { remote }),
          ...(caller === undefined ? {} : { caller }),
        };
        return runFilters(this.#filters, invocation, call);
      });
    } finally {
      this.#inFlight--;
    }
  }
}
