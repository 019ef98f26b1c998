/**
 * Service definitions, TypeScript-first: a service is a name, a version, a group and a map
 * of methods, each with zod input and output schemas and an idempotent flag. The same
 * object types the provider's implementation and the consumer's proxy; no codegen.
 */
import type { z } from 'zod';
import type { CallContext } from '../core/context.js';
import { InvalidArgumentError } from '../core/errors.js';
import { DEFAULT_GROUP, DEFAULT_VERSION, serviceKey } from '../registry/service-instance.js';

/** One method: its schemas, whether a retry is safe, and an optional default timeout. */
export interface MethodSpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  /** Schema of the single argument. */
  readonly input: I;
  /** Schema of the result. */
  readonly output: O;
  /** True when running it twice has the effect of once: only these are retried by failover. */
  readonly idempotent?: boolean;
  /** Default client timeout for this method, ms. */
  readonly timeoutMs?: number;
}

/** The methods of a service by name. */
export type MethodMap = Record<string, MethodSpec>;

/** A service definition as returned by {@link defineService}. */
export interface ServiceDefinition<M extends MethodMap = MethodMap> {
  /** Service name, e.g. `shop.inventory`. */
  readonly name: string;
  /** Version, e.g. `1.0.0`. */
  readonly version: string;
  /** Default group consumers look in (a client may override it). */
  readonly group: string;
  /** The methods. */
  readonly methods: M;
  /** `name:version`: how a provider addresses the implementation. */
  readonly id: string;
}

/** What {@link defineService} takes. */
export interface ServiceSpec<M extends MethodMap> {
  name: string;
  version?: string;
  group?: string;
  methods: M;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/** Declares a service; the result types both sides of the call. */
export function defineService<const M extends MethodMap>(
  spec: ServiceSpec<M>,
): ServiceDefinition<M> {
  const version = spec.version ?? DEFAULT_VERSION;
  const group = spec.group ?? DEFAULT_GROUP;
  if (!NAME.test(spec.name)) {
    throw new InvalidArgumentError(
      `service name '${spec.name}' is not valid: use letters, digits, '.', '_' or '-', starting with a letter`,
      { details: { input: 'name' } },
    );
  }
  for (const [what, value] of [
    ['version', version],
    ['group', group],
  ] as const) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
      throw new InvalidArgumentError(
        `service ${spec.name}: ${what} '${value}' is not valid: use 1-64 letters, digits, '.', '_' or '-'`,
        { details: { input: what } },
      );
    }
  }
  for (const method of Object.keys(spec.methods)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(method)) {
      throw new InvalidArgumentError(`service ${spec.name}: method name '${method}' is not valid`, {
        details: { input: method },
      });
    }
  }
  return Object.freeze({
    name: spec.name,
    version,
    group,
    methods: spec.methods,
    id: `${spec.name}:${version}`,
  });
}

/** The subscription key of a definition in a group (default: its own). */
export function definitionKey(def: ServiceDefinition, group: string = def.group): string {
  return serviceKey(def.name, def.version, group);
}

/** Per-call options on a client proxy method. */
export interface CallOptions {
  /** Timeout for this call, ms; becomes the context deadline (an earlier one wins). */
  timeoutMs?: number;
  /** Extra route tags for this call (merged into the context, so they stick downstream). */
  tags?: Record<string, string>;
}

/** The typed client of a service: one async function per method. */
export type ServiceClient<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: (
    input: z.input<D['methods'][K]['input']>,
    options?: CallOptions,
  ) => Promise<z.output<D['methods'][K]['output']>>;
};

/** The client of a service under the `failsafe` strategy: a failed call resolves `undefined`. */
export type FailsafeServiceClient<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: (
    input: z.input<D['methods'][K]['input']>,
    options?: CallOptions,
  ) => Promise<z.output<D['methods'][K]['output']> | undefined>;
};

/** What a provider's method knows of its call besides the argument and the context. */
export interface ProviderCall {
  /**
   * Aborts when the caller is gone (its connection closed, or its HTTP/JSON request was
   * abandoned): a method that waits (a long poll) stops waiting and takes nothing more on
   * the caller's behalf.
   */
  readonly signal: AbortSignal;
  /** The caller's address, when it came over a socket. */
  readonly remote?: string;
}

/** A provider's implementation of a service: one (async) function per method. */
export type ServiceImplementation<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: (
    input: z.output<D['methods'][K]['input']>,
    ctx: CallContext,
    call: ProviderCall,
  ) => Promise<z.input<D['methods'][K]['output']>> | z.input<D['methods'][K]['output']>;
};
