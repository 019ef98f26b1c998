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
