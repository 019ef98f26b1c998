/**
 * The node's RPC port: the SDK's hot calls to the control plane (the broker's send,
 * receive, ack and nack; the coordinator's saga and TCC submits, and two-phase messages'
 * prepare, submit and abort) over one persistent,
 * multiplexed connection per client with the RPC framing of `peakware/rpc`, instead of an
 * HTTP request each. A module hosts its service here while its routes register
 * (`ctx.rpc.addService`); the host opens the port once every module is ready, says where it
 * is at `GET /api/v1/rpc`, and closes it at shutdown after the modules' `preClose` (long
 * polls woken first). HTTP stays the way in for everything else and the fallback for these.
 *
 * A call carries its credential, checked as HTTP checks a bearer token ({@link
 * ControlPlaneRpc.caller}: the node's Authenticator and its cache, the shared limiter of
 * wrong credentials per address, and the `sdk` routes' rule: an app credential holding a
 * grant of the call's kind, or an operator token of the admin role); its body is checked
 * against the HTTP route's own schema ({@link bodyCheck}), so a field means and is refused
 * the same both ways. The RPC provider brings the transport's bounds: a malformed frame is
 * refused to its sender only, an oversized one closes its connection, incomplete frames
 * share one memory budget and a time limit, a peer that does not read is not read.
 */
import type { TSchema } from '@sinclair/typebox';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { formatScope, hasScopeKind, type ScopeKind } from './app-scopes.js';
import type { AuthFailureCounter, Caller } from './http-api.js';
import { routeValidatorCompiler, validationError } from './route-schema.js';

/** Where a node's RPC port listens, as `GET /api/v1/rpc` answers. */
export type RpcEndpointInfo =
  | { available: true; host: string; port: number; tls: boolean }
  | { available: false; reason: string };

/**
 * A service as the port hosts it: a `peakware/rpc` ServiceDefinition (described here by
 * shape: the host's primitives import no subsystem). The module types its implementation
 * with rpc's `ServiceImplementation<typeof definition>`.
 */
export interface HostedServiceDefinition {
  readonly name: string;
  readonly version: string;
  readonly group: string;
  readonly id: string;
  readonly methods: Readonly<Record<string, unknown>>;
}

/** What a module sees of the node's RPC port. */
export interface ControlPlaneRpc {
  /**
   * Hosts a service (while the module's routes register, before the node is ready):
   * `impl` is the definition's `ServiceImplementation`.
   */
  addService(def: HostedServiceDefinition, impl: object): void;
  /**
   * The caller a call's credential proves, for a call of grant kind `scope`; throws
   * PEAK_AUTH_RATE_LIMITED, PEAK_UNAUTHENTICATED or PEAK_FORBIDDEN as HTTP would answer.
   */
  caller(token: string | undefined, remote: string | undefined, scope: ScopeKind): Promise<Caller>;
}

/** A body check with the HTTP routes' compiler: the checked body, or PEAK_INVALID_ARGUMENT. */
export function bodyCheck<T>(schema: TSchema): (body: unknown) => T {
  const validate = compile({ schema, method: 'POST', url: 'rpc', httpPart: 'body' });
  return (body) => {
    if (validate(body) !== true) {
      const errors = (
        validate as unknown as { errors?: { keyword: string; instancePath: string }[] }
      ).errors;
      throw validationError(errors ?? [], 'body');
    }
    return body as T;
  };
}
const compile = routeValidatorCompiler();

/** What {@link rpcCaller} checks a credential with: the node's own verifier and limiter. */
export interface RpcCredentialCheck {
  /** Verifies a credential as the HTTP lifecycle does (undefined: it does not work). */
  authenticate: (token: string) => Promise<Caller | undefined>;
  /** The node's limit on failed authentications per address (shared with HTTP and MQTT). */
  failures?: AuthFailureCounter;
}

/** {@link ControlPlaneRpc.caller}: a call's credential checked as HTTP checks a bearer token. */
export async function rpcCaller(
  check: RpcCredentialCheck,
  token: string | undefined,
  remote: string | undefined,
  scope: ScopeKind,
): Promise<Caller> {
  const { failures } = check;
  const address = remote ?? 'unknown';
  const wait = failures?.retryAfterMs(address) ?? 0;
  if (wait > 0) {
    throw new PeakError(
      ErrorCodes.AUTH_RATE_LIMITED,
      `too many wrong credentials from ${address}; try again in ${Math.ceil(wait / 1000)} s`,
      { details: { retryAfterMs: wait, sent: false } },
    );
  }
  if (token === undefined || token === '') {
    throw new PeakError(
      ErrorCodes.UNAUTHENTICATED,
      'a call on the RPC port needs a credential: give the client an app credential (its token option, or PEAK_CREDENTIAL)',
      { details: { reason: 'missing', sent: false } },
    );
  }
  const caller = await check.authenticate(token);
  if (caller === undefined) {
    failures?.fail(address);
    throw new PeakError(
      ErrorCodes.UNAUTHENTICATED,
      'the credential is not a working app credential or token (wrong, revoked or expired); an admin lists them with peak app ls',
      { details: { reason: 'refused', sent: false } },
    );
  }
  const refused =
    caller.kind === 'role'
      ? caller.role === 'admin'
        ? undefined
        : `a ${scope} call needs an app credential with a ${scope} grant, or the admin role; ${caller.who} has the ${caller.role} role`
      : hasScopeKind(caller.scopes, scope)
        ? undefined
        : `a ${scope} call needs a ${scope} grant; app '${caller.app}' holds ${caller.scopes.map(formatScope).join(', ') || 'none'} (an admin adds one with 'peak app scopes ${caller.app} --can ${scope}:...')`;
  if (refused !== undefined) {
    if (failures !== undefined) failures.denied++;
    throw new PeakError(ErrorCodes.FORBIDDEN, refused, { details: { sent: false } });
  }
  return caller;
}
