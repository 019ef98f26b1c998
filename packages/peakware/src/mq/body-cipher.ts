/**
 * Optional end-to-end body encryption: AES-256-GCM with a key id, done in the SDK so the
 * broker and its database only ever see ciphertext. The key id travels in the message
 * property `peak-enc`; consumers keep old keys in their key ring to read messages sent
 * before a rotation, producers encrypt with the current key.
 *
 * Layout of an encrypted body: 12-byte IV, ciphertext, 16-byte tag.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ErrorCodes, PeakError } from '../core/errors.js';

/** The message property that names the key a body was encrypted with. */
export const ENCRYPTION_PROPERTY = 'peak-enc';

/** Keys by id (32 bytes each) and the id new messages are encrypted with. */
export interface KeyRing {
  keys: Readonly<Record<string, Uint8Array>>;
  /** The key id producers use now; rotate by adding a key and moving this. */
  current: string;
}

function key(ring: KeyRing, id: string): Uint8Array {
  const k = ring.keys[id];
  if (k === undefined) {
    throw new PeakError(
      ErrorCodes.MQ_DECRYPT_FAILED,
      `no key '${id}' in the key ring (has: ${Object.keys(ring.keys).join(', ') || 'none'}); add the key the producer used`,
      { details: { keyId: id } },
    );
  }
  if (k.length !== 32) {
    throw new PeakError(
      ErrorCodes.INVALID_ARGUMENT,
      `key '${id}' must be 32 bytes for AES-256-GCM, got ${k.length}`,
      {
        details: { input: 'keys', keyId: id },
      },
    );
  }
  return k;
}

/** Encrypts a body with the ring's current key; returns the bytes and the key id. */
export function encryptBody(ring: KeyRing, body: Uint8Array): { body: Buffer; keyId: string } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key(ring, ring.current), iv);
  const out = Buffer.concat([iv, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
  return { body: out, keyId: ring.current };
}

/** Decrypts a body encrypted under `keyId`; a wrong key or changed byte fails loudly. */
export function decryptBody(ring: KeyRing, keyId: string, body: Uint8Array): Buffer {
  if (body.length < 28) {
    throw new PeakError(
      ErrorCodes.MQ_DECRYPT_FAILED,
      `encrypted body is ${body.length} bytes, too short to hold IV and tag`,
    );
  }
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', key(ring, keyId), buf.subarray(0, 12));
  decipher.setAuthTag(buf.subarray(buf.length - 16));
  try {
    return Buffer.concat([decipher.update(buf.subarray(12, buf.length - 16)), decipher.final()]);
  } catch (err) {
    throw new PeakError(
      ErrorCodes.MQ_DECRYPT_FAILED,
      `body failed AES-GCM authentication under key '${keyId}': it was changed, or the key is wrong`,
      { cause: err, details: { keyId } },
    );
  }
}
