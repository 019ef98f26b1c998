/**
 * Secrets and signatures, shared by every subsystem that issues credentials or checks a
 * signature (the gateway's app keys, the control plane's credentials): random secrets,
 * SHA-256 digests, HMAC-SHA256, and a constant-time comparison. One home, so no subsystem
 * grows its own slightly different copy.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random secret: `bytes` random bytes as base64url, after `prefix` (e.g. `gk_`). */
export function randomSecret(bytes = 32, prefix = ''): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

/** SHA-256 of `data` (UTF-8 for strings) as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** HMAC-SHA256 of `data` under `key`, as base64url (no padding). */
export function hmacSha256(key: string | Uint8Array, data: string | Uint8Array): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

/**
 * True when two strings are equal, in time that does not depend on where they differ (a
 * secret or a signature compared with `===` leaks its prefix through timing).
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  if (x.length !== y.length) {
    // Compare anyway so a wrong length costs what a wrong byte costs.
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}
