/**
 * How HTTP clients write and read message bodies. The broker stores bytes and speaks base64
 * (bytes are bytes); a client that sends text or JSON says so per message with
 * `encoding: 'utf8' | 'json'` and a receive or stream request asks for the same with
 * `encoding`, so a `curl` user need not base64 anything. The SDK keeps base64.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { ENCRYPTION_PROPERTY } from '../body-cipher.js';
import type { ReceivedMessage } from '../message-types.js';

/** The body encodings of the HTTP API: base64 bytes (the default), UTF-8 text, a JSON value. */
export const BODY_ENCODINGS = ['base64', 'utf8', 'json'] as const;

/** One of {@link BODY_ENCODINGS}. */
export type BodyEncoding = (typeof BODY_ENCODINGS)[number];

/** A message as an HTTP client sends it: its body in `encoding` (default base64). */
export interface EncodedBody {
  body: unknown;
  encoding?: BodyEncoding;
}

/** A delivery as an HTTP client asked for it: `encoding` says how this body is written. */
export type EncodedReceivedMessage = Omit<ReceivedMessage, 'body'> & {
  body: unknown;
  encoding?: BodyEncoding;
};

/**
 * The message with its body as base64 (what the broker checks and stores). A utf8 body
 * must be a string; a json body is any JSON value, stored as its JSON text. A base64 body
 * goes through untouched (the broker checks it). A signature is over the base64 form.
 */
export function toBase64Message<M extends EncodedBody>(
  m: M,
  index: number,
): Omit<M, 'body' | 'encoding'> & { body: unknown } {
  type Base64Message = Omit<M, 'body' | 'encoding'> & { body: unknown };
  if (m.encoding === undefined) return m as Base64Message; // the SDK's path: nothing to copy
  const { encoding, body, ...rest } = m;
  if (encoding === 'base64') return { ...rest, body };
  if (encoding === 'utf8') {
    if (typeof body !== 'string') {
      throw new InvalidArgumentError(
        `body field messages[${index}].body must be a string with encoding 'utf8', got ${typeof body}`,
        { details: { input: `messages[${index}].body`, in: 'body' } },
      );
    }
    return { ...rest, body: Buffer.from(body, 'utf8').toString('base64') };
  }
  return { ...rest, body: Buffer.from(JSON.stringify(body), 'utf8').toString('base64') };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The delivery with its body in `encoding` when the bytes allow it: utf8 needs valid UTF-8,
 * json needs JSON text; otherwise (and for an encrypted body) it stays base64. Every
 * delivery of a request that asked for utf8 or json says its `encoding`.
 */
export function encodeDelivery(m: ReceivedMessage, encoding: BodyEncoding): EncodedReceivedMessage {
  if (encoding === 'base64') return m;
  const base64 = { ...m, encoding: 'base64' as const };
  if (m.properties[ENCRYPTION_PROPERTY] !== undefined) return base64;
  let text: string;
  try {
    text = strictUtf8.decode(Buffer.from(m.body, 'base64'));
  } catch {
    return base64;
  }
  if (encoding === 'utf8') return { ...m, body: text, encoding };
  try {
    return { ...m, body: JSON.parse(text) as unknown, encoding };
  } catch {
    return base64;
  }
}
