/**
 * The shapes of messages as they travel between SDK, HTTP API and broker. Bodies travel
 * as base64 on the wire (bytes are bytes); ids are decimal strings (64-bit ids exceed
 * 2^53).
 */

/** A message to send. */
export interface OutgoingMessage {
  /** The body: bytes, or a string sent as UTF-8. */
  body: Uint8Array | string;
  /** One tag consumers can filter on (RocketMQ's tag), e.g. `created`. */
  tag?: string;
  /** Business keys to find the message by later (order id, user id). */
  keys?: readonly string[];
  /** Ordered topics: messages of one group are delivered in send order (sharding key). */
  group?: string;
  /** User properties; `peak-*`, `traceparent` and `baggage` are set by the SDK. */
  properties?: Readonly<Record<string, string>>;
  /** Deliver no earlier than this many ms from now (up to 40 days). */
  delayMs?: number;
  /** Deliver no earlier than this time, epoch ms (up to 40 days ahead). */
  deliverAt?: number;
}

/** One message in a send request as the HTTP API takes it. */
export interface WireMessage {
  /** Base64 of the body bytes. */
  body: string;
  tag?: string;
  keys?: string[];
  group?: string;
  properties?: Record<string, string>;
  /** Epoch ms; absent or past means now. */
  deliverAt?: number;
  /** Hex HMAC-SHA256 over the canonical form (see `signMessage`), for secured topics. */
  signature?: string;
  /** A signed message's random id: the broker refuses it a second time (replay). */
  nonce?: string;
  /** When a signed message was signed, epoch ms: refused outside the broker's window. */
  signedAt?: number;
}

/** A message as a consumer receives it. */
export interface ReceivedMessage {
  /** The message id (time-ordered), kept across retries. */
  id: string;
  /** The topic it was sent to (for a retry, the original topic). */
  topic: string;
  queueId: number;
  queueOffset: string;
  tag: string | null;
  keys: string[];
  group: string | null;
  properties: Record<string, string>;
  /** Base64 on the wire; the SDK turns it into bytes. */
  body: string;
  bornAt: number;
  storedAt: number;
  /** How many times it failed before this delivery. */
  reconsumeTimes: number;
  /** Pass to ack or nack. */
  receipt: string;
}

/** The limit on message delay: 40 days, as Aliware MQ's scheduled messages. */
export const MAX_DELAY_MS = 40 * 24 * 60 * 60 * 1000;

/** The default retry ladder (RocketMQ's levels from 10 s), 16 tries. */
export const DEFAULT_BACKOFF_MS: readonly number[] = [
  10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000, 480_000, 540_000,
  600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

/** Default tries before a message goes to the group's dead-letter queue. */
export const DEFAULT_MAX_RETRIES = 16;

/** Names the broker derives from topics and groups. */
export const TopicNames = {
  /** The retry topic of a consumer group. */
  retry: (group: string) => `%RETRY%${group}`,
  /** The shadow topic stress traffic goes to. */
  shadow: (topic: string) => `%SHADOW%${topic}`,
} as const;

/** Topic and group names: letters, digits, `.`, `_`, `-`, `%` (for derived names), ≤ 127. */
export const NAME_PATTERN = /^[A-Za-z0-9._%-]{1,127}$/;
