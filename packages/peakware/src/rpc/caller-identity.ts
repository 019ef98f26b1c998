/**
 * The seam through which RPC proves who is calling, so "who is calling" is never a header
 * anyone can set. A consumer presents a signed identity (an {@link IdentitySource}: the
 * `AppIdentity` of `peakware/security`, renewed from the control plane) once per connection
 * and again whenever it is renewed; the provider checks it once (a {@link CallerVerifier}:
 * `peakware/security`'s `IdentityVerifier`, offline with the control plane's public keys)
 * and every call on the connection carries the verified app. Over HTTP/JSON access the
 * identity is the `authorization: Bearer` header, checked per request (the verifier caches
 * per token).
 */
import { ErrorCodes, isPeakError, PeakError } from '../core/errors.js';

/** Where a consumer gets the identity it presents. */
export interface IdentitySource {
  /** The identity to present now (a JWT), or undefined when it has none. Called per call: keep it cheap. */
  current(): string | undefined;
}

/** A caller whose identity was verified. */
export interface VerifiedCaller {
  /** The app the identity names. */
  readonly app: string;
  /** When the identity expires, epoch ms: calls after it are refused. */
  readonly expiresAt: number;
}

/** How a provider checks a presented identity. */
export interface CallerVerifier {
  /**
   * The caller `token` proves; throws PEAK_UNAUTHENTICATED (with `details.reason`) when it
   * is forged, expired, malformed or signed by an unknown key. May answer synchronously
   * (a cached token or a known key) to keep the call path free of promises.
   */
  verify(token: string): VerifiedCaller | Promise<VerifiedCaller>;
}

/** A provider's identity settings (`RpcServerOptions.identity`). */
export interface ProviderIdentityOptions {
  /** Checks presented identities. */
  verifier: CallerVerifier;
  /**
   * Refuse calls without a verified identity (PEAK_UNAUTHENTICATED) instead of serving
   * them as an unknown caller. Default true.
   */
  required?: boolean;
}

/** What a call presented of its caller: the verified identity, or why it was refused. */
export interface PresentedCaller {
  caller?: VerifiedCaller | undefined;
  refused?: unknown;
}

/**
 * The verified app of a call on a provider with `identity`, or undefined for an unknown
 * caller a provider that does not require identities serves; throws PEAK_UNAUTHENTICATED
 * when one is required and the call has none, an expired one or a refused one.
 */
export function verifiedCallerApp(
  identity: ProviderIdentityOptions,
  presented: PresentedCaller | undefined,
  provider: string,
  what: string,
  now: number = Date.now(),
): string | undefined {
  const c = presented?.caller;
  if (c !== undefined && c.expiresAt > now) return c.app;
  if (identity.required === false) return undefined;
  const hint =
    'give the consumer an identity (RpcClient option identity: an AppIdentity of peakware/security)';
  if (c !== undefined) {
    throw new PeakError(
      ErrorCodes.UNAUTHENTICATED,
      `provider ${provider} refused ${what}: the caller identity of app '${c.app}' expired at ${new Date(c.expiresAt).toISOString()}; its AppIdentity renews it from the control plane`,
      { details: { reason: 'expired', app: c.app, sent: false } },
    );
  }
  if (presented?.refused !== undefined) {
    const why = presented.refused;
    throw new PeakError(
      ErrorCodes.UNAUTHENTICATED,
      `provider ${provider} refused ${what}: ${isPeakError(why) ? why.message : String(why)}`,
      { details: { ...(isPeakError(why) ? why.details : {}), sent: false } },
    );
  }
  throw new PeakError(
    ErrorCodes.UNAUTHENTICATED,
    `provider ${provider} requires a verified caller identity for ${what} and the call presented none; ${hint}`,
    { details: { reason: 'missing', sent: false } },
  );
}

/** The identity of an HTTP/JSON call (`authorization: Bearer`), checked by `verifier`. */
export async function presentedOverHttp(
  verifier: CallerVerifier,
  authorization: string | undefined,
): Promise<PresentedCaller> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (m === null) return {};
  try {
    return { caller: await verifier.verify(m[1]!) };
  } catch (refused) {
    return { refused };
  }
}
