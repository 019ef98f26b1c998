/**
 * The guard as an RPC filter. The rpc package's filter seam (`RpcFilter`: `(invocation,
 * next) => Promise`) runs it around every call; the guard does not import rpc (rpc sits
 * above guard), the types below are the part of rpc's `Invocation` it reads.
 *
 * Provider side: each call is an inbound entry (system protection applies) to the resource
 * `service.method`, its origin the calling app as its verified identity proves it (rpc's
 * `Invocation.caller`; see rpc/caller-identity.ts). A caller without a verified identity
 * has no origin: the `peak-caller` header is anyone's to set, so authority rules and
 * per-origin limits never trust it (an allow rule refuses such a caller). Consumer side: an
 * outbound entry to the same resource name, so breakers and limits protect the caller from
 * a failing or slow provider. A refused call throws the BlockError (PEAK_GUARD_BLOCKED),
 * which rpc carries to the consumer with its code and details.
 */
import type { CallContext } from '../core/context.js';
import type { Guard } from './guard.js';

/** What the guard filter reads of an RPC call (a subset of rpc's `Invocation`). */
export interface GuardedInvocation {
  readonly side: 'consumer' | 'provider';
  readonly service: string;
  readonly method: string;
  readonly args: unknown;
  readonly context: CallContext;
  /** Provider side: the app the caller's verified identity names, if any. */
  readonly caller?: string;
}

/** Options for {@link guardRpcFilter}. */
export interface GuardRpcOptions {
  /** The resource name. Default `service.method`. */
  resource?: (invocation: GuardedInvocation) => string;
  /**
   * Arguments for hot-parameter rules. Default `[args]` for a primitive argument, else the
   * argument object's values in key order (so `{ sku }` gives `[sku]`).
   */
  args?: (invocation: GuardedInvocation) => readonly unknown[];
}

function defaultArgs(inv: GuardedInvocation): readonly unknown[] {
  const a = inv.args;
  if (Array.isArray(a)) return a;
  if (typeof a === 'object' && a !== null) return Object.values(a);
  return [a];
}

/** An RPC filter (provider or consumer side) that runs every call through `guard`. */
export function guardRpcFilter(
  guard: Guard,
  options: GuardRpcOptions = {},
): (invocation: GuardedInvocation, next: () => Promise<unknown>) => Promise<unknown> {
  const resourceOf = options.resource ?? ((inv) => `${inv.service}.${inv.method}`);
  const argsOf = options.args ?? defaultArgs;
  return async (inv, next) => {
    const provider = inv.side === 'provider';
    const entry = guard.entry(resourceOf(inv), {
      type: provider ? 'in' : 'out',
      args: argsOf(inv),
      // The verified caller only; '' (no origin) for one that proved nothing.
      ...(provider ? { origin: inv.caller ?? '' } : {}),
    });
    if (entry.waitMs > 0) await entry.ready();
    try {
      const result = await next();
      entry.exit();
      return result;
    } catch (err) {
      entry.exit(err);
      throw err;
    }
  };
}
