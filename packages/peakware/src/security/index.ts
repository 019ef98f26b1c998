/**
 * `peakware/security`: what the rest of the stack's security builds on. Today: a dev
 * certificate authority for TLS and mutual TLS between services (`peak tls init`). See
 * README.md for what is built and what is not yet.
 */
export { createDevPki, type DevPki, type DevPkiOptions } from './dev-pki.js';
