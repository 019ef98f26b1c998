/**
 * What the admin sections send their calls through: the verbs of the one control-plane
 * client. A Node process passes a `ControlPlaneClient` (failover, retries, the admin token);
 * the console's browser app passes its own fetch-based transport (same-origin, its session
 * cookie and CSRF token), so both call the typed sections and neither writes a URL.
 */
import type { ControlPlaneClient } from '../core/control-plane-client.js';

/** The calls an admin section makes: `get`, `post`, `put` and `delete` of `ControlPlaneClient`. */
export type AdminTransport = Pick<ControlPlaneClient, 'get' | 'post' | 'put' | 'delete'>;
