/**
 * `peakware/security`: what the rest of the stack's security builds on: apps' signed
 * identities for RPC (`AppIdentity` on the consumer, `IdentityVerifier` on the provider),
 * and a dev certificate authority for TLS and mutual TLS (`peak tls init`). See README.md.
 */
export { AppIdentity, type AppIdentityOptions } from './app-identity.js';
export { createDevPki, type DevPki, type DevPkiOptions } from './dev-pki.js';
export {
  IDENTITY_VERIFIER_DEFAULTS,
  IdentityVerifier,
  type IdentityVerifierOptions,
} from './identity-verifier.js';
