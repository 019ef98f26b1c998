/**
 * Turns an {@link OutgoingMessage} into its wire form (context in properties, optional
 * encryption, signature) and a received wire message back into a {@link ConsumedMessage}.
 * Shared by the producer, the consumer and `sendInTransaction`.
 */
import { currentContext } from '../core/context.js';
import { encodeContext } from '../core/context-headers.js';
import { InvalidArgumentError } from '../core/errors.js';
import { decryptBody, ENCRYPTION_PROPERTY, encryptBody, type KeyRing } from './body-cipher.js';
import { newMessageNonce, signMessage } from './message-signature.js';
import {
  MAX_DELAY_MS,
  type OutgoingMessage,
  type ReceivedMessage,
  type WireMessage,
} from './message-types.js';

/** A received message as a handler sees it. */
export interface ConsumedMessage {
  id: string;
  topic: string;
  tag: string | null;
  keys: string[];
  /** The ordering group, if any. */
  group: string | null;
  properties: Record<string, string>;
  /** The body bytes (decrypted when it was encrypted). */
  body: Buffer;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
  bornAt: number;
  storedAt: number;
  /** How many earlier deliveries failed. */
  reconsumeTimes: number;
  queueId: number;
  queueOffset: string;
}

/** The epoch ms a message asks to be delivered at, validated (≤ 40 days ahead). */
export function deliverAtOf(m: OutgoingMessage, now = Date.now()): number | undefined {
  const at = m.deliverAt ?? (m.delayMs === undefined ? undefined : now + m.delayMs);
  if (at === undefined) return undefined;
  if (!Number.isFinite(at) || at - now > MAX_DELAY_MS) {
    throw new InvalidArgumentError('delay must be a finite time at most 40 days ahead', {
      details: { input: 'delayMs' },
    });
  }
  return at;
}

/** The message's properties with the current call context added. */
export function propertiesOf(m: OutgoingMessage): Record<string, string> {
  const ctx = currentContext();
  return { ...(m.properties ?? {}), ...(ctx === undefined ? {} : encodeContext(ctx)) };
}

/** The body bytes, encrypted with the ring's current key when a ring is given. */
export function bodyOf(
  m: OutgoingMessage,
  ring: KeyRing | undefined,
  props: Record<string, string>,
): Buffer {
  const raw = typeof m.body === 'string' ? Buffer.from(m.body, 'utf8') : Buffer.from(m.body);
  if (ring === undefined) return raw;
  const enc = encryptBody(ring, raw);
  props[ENCRYPTION_PROPERTY] = enc.keyId;
  return enc.body;
}

/** The wire form of a message for `topic`, signed when a produce secret is given. */
export function toWire(
  topic: string,
  m: OutgoingMessage,
  opts: { secret?: string | undefined; ring?: KeyRing | undefined },
): WireMessage {
  const properties = propertiesOf(m);
  const body = bodyOf(m, opts.ring, properties).toString('base64');
  const deliverAt = deliverAtOf(m);
  const wire: WireMessage = {
    body,
    properties,
    ...(m.tag === undefined ? {} : { tag: m.tag }),
    ...(m.keys === undefined ? {} : { keys: [...m.keys] }),
    ...(m.group === undefined ? {} : { group: m.group }),
    ...(deliverAt === undefined ? {} : { deliverAt }),
  };
  if (opts.secret !== undefined) {
    wire.nonce = newMessageNonce();
    wire.signedAt = Date.now();
    wire.signature = signMessage(opts.secret, {
      topic,
      body,
      tag: m.tag,
      keys: wire.keys ?? [],
      group: m.group,
      properties,
      deliverAt,
      nonce: wire.nonce,
      signedAt: wire.signedAt,
    });
  }
  return wire;
}

/** `wire` signed again under `secret` with a new nonce and signing time. */
export function resign(secret: string, topic: string, wire: WireMessage): WireMessage {
  const nonce = newMessageNonce();
  const signedAt = Date.now();
  return {
    ...wire,
    nonce,
    signedAt,
    signature: signMessage(secret, {
      topic,
      body: wire.body,
      tag: wire.tag,
      keys: wire.keys ?? [],
      group: wire.group,
      properties: wire.properties ?? {},
      deliverAt: wire.deliverAt,
      nonce,
      signedAt,
    }),
  };
}

/** A received wire message as a handler sees it (decrypting with the ring if needed). */
export function fromWire(r: ReceivedMessage, ring: KeyRing | undefined): ConsumedMessage {
  let body: Buffer = Buffer.from(r.body, 'base64');
  const keyId = r.properties[ENCRYPTION_PROPERTY];
  if (keyId !== undefined) {
    if (ring === undefined) {
      throw new InvalidArgumentError(
        `message ${r.id} is encrypted with key '${keyId}'; give the consumer an 'encryption' key ring`,
        {
          details: { input: 'encryption', keyId },
        },
      );
    }
    body = decryptBody(ring, keyId, body);
  }
  return {
    id: r.id,
    topic: r.topic,
    tag: r.tag,
    keys: r.keys,
    group: r.group,
    properties: r.properties,
    body,
    text: () => body.toString('utf8'),
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
    bornAt: r.bornAt,
    storedAt: r.storedAt,
    reconsumeTimes: r.reconsumeTimes,
    queueId: r.queueId,
    queueOffset: r.queueOffset,
  };
}
