/**
 * HMAC-SHA256 signatures over a message's canonical form, keyed by the topic's produce
 * secret. The broker refuses a message on a secured topic whose signature does not match:
 * a changed body, tag, key, group or property is detected, and so is a wrong secret. The
 * signed form carries a random nonce and the time it was signed, so the broker refuses a
 * captured message sent again (the nonce seen within the window, or the time outside it).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The fields a signature covers. */
export interface SignedFields {
  topic: string;
  /** Base64 of the body. */
  body: string;
  tag?: string | undefined;
  keys?: readonly string[] | undefined;
  group?: string | undefined;
  properties?: Readonly<Record<string, string>> | undefined;
  deliverAt?: number | undefined;
  /** A random id of this signing (replays of it are refused). */
  nonce?: string | undefined;
  /** When it was signed, epoch ms. */
  signedAt?: number | undefined;
}

/** A fresh nonce for a signed message: 16 random bytes, base64url. */
export function newMessageNonce(): string {
  return randomBytes(16).toString('base64url');
}

function canonical(m: SignedFields): string {
  const props = Object.entries(m.properties ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    m.topic,
    m.tag ?? '',
    m.keys ?? [],
    m.group ?? '',
    props,
    m.deliverAt ?? 0,
    m.body,
    m.signedAt ?? 0,
    m.nonce ?? '',
  ]);
}

/** The hex signature of a message under `secret`. */
export function signMessage(secret: string, m: SignedFields): string {
  return createHmac('sha256', secret).update(canonical(m)).digest('hex');
}

/** True when `signature` is the signature of `m` under `secret` (constant-time compare). */
export function verifyMessage(
  secret: string,
  m: SignedFields,
  signature: string | undefined,
): boolean {
  if (typeof signature !== 'string' || !/^[0-9a-f]{64}$/.test(signature)) return false;
  const want = Buffer.from(signMessage(secret, m), 'hex');
  return timingSafeEqual(want, Buffer.from(signature, 'hex'));
}
