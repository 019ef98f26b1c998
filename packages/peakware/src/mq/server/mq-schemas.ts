/**
 * The bodies of the broker's data-plane calls (send, receive, stream, ack, nack) as JSON
 * schemas, in one place for both ways in: the HTTP routes (mq-routes.ts, checked by the
 * host before the handler) and the RPC port (mq-rpc-service.ts, checked with the
 * same compiler and the same error words), so a field means and takes the same on both.
 */
import { Type } from '@sinclair/typebox';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
import { DEFAULT_BACKOFF_MS, DEFAULT_MAX_RETRIES, MAX_DELAY_MS } from '../message-types.js';
import { BODY_ENCODINGS } from './http-body-encoding.js';

/** A message as producers send it (the broker checks the body, size and signature). */
export const wireMessage = Type.Object({
  body: Type.Unknown({
    takes:
      "the body: base64 bytes, or a string with encoding 'utf8', or any JSON value with encoding 'json'",
  }),
  encoding: Type.Optional(
    StringEnum(BODY_ENCODINGS, {
      description: "how body is written: 'base64' (the default), 'utf8' text or a 'json' value",
    }),
  ),
  tag: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()])),
  keys: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 32 })),
  group: Type.Optional(
    Type.Union([
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'the ordering key (required on ordered topics)',
      }),
      Type.Null(),
    ]),
  ),
  properties: Type.Optional(Type.Record(Type.String(), Type.String())),
  deliverAt: Type.Optional(
    Type.Number({ description: `epoch ms; at most ${MAX_DELAY_MS / 86_400_000} days ahead` }),
  ),
  signature: Type.Optional(
    Type.String({ description: "hex HMAC-SHA256 by the topic's produce secret (secured topics)" }),
  ),
});

/** A send: 1-1000 messages stored together, or none of them. */
export const sendBody = Type.Object({
  messages: Type.Array(wireMessage, { minItems: 1, maxItems: 1000 }),
});

/** What long-poll receive and push streams share: who consumes what, and its retry policy. */
const subscription = {
  topic: Type.String({ minLength: 1 }),
  consumerId: Type.String({
    pattern: '^[A-Za-z0-9._:@-]{1,128}$',
    takes: '1-128 letters, digits, . _ : @ -',
  }),
  tags: Type.Optional(
    Type.Union([Type.Array(Type.String()), Type.Literal('*'), Type.Null()], {
      takes: "an array of tags, or '*' (or null) for every tag",
    }),
  ),
  startFrom: WithDefault(StringEnum(['earliest', 'latest']), 'earliest'),
  broadcasting: WithDefault(Type.Boolean(), false),
  maxRetries: WithDefault(Type.Integer({ minimum: 0, maximum: 100 }), DEFAULT_MAX_RETRIES),
  backoffMs: WithDefault(
    Type.Array(Type.Integer({ minimum: 0, maximum: 86_400_000 }), { minItems: 1 }),
    [...DEFAULT_BACKOFF_MS],
  ),
  invisibleMs: WithDefault(Type.Integer({ minimum: 100, maximum: 12 * 3_600_000 }), 30_000),
  encoding: WithDefault(
    StringEnum(BODY_ENCODINGS, {
      description:
        "bodies as 'base64' (the default), 'utf8' text or 'json' values where they are that (each delivery then says its encoding)",
    }),
    'base64',
  ),
};
export const receiveBody = Type.Object({
  ...subscription,
  max: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 32),
  waitMs: WithDefault(Type.Integer({ minimum: 0, maximum: 30_000 }), 20_000),
  acks: Type.Optional(
    Type.Array(Type.String({ description: 'a receipt from a delivery' }), {
      maxItems: 5000,
      description:
        'receipts to ack before receiving, as the ack route would (saves a request per receive)',
    }),
  ),
});
export const streamBody = Type.Object({
  ...subscription,
  inflight: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 32),
});
const receipts = (max: number) =>
  Type.Array(Type.String({ description: 'a receipt from a delivery' }), { maxItems: max });
const consumerId = WithDefault(Type.String(), '');

/** Acks by receipt. */
export const ackBody = Type.Object({
  topic: Type.String({ minLength: 1 }),
  consumerId,
  receipts: receipts(5000),
});

/** Nacks by receipt: retried after their backoff (or `delayMs`), or dead-lettered. */
export const nackBody = Type.Object({
  topic: Type.String({ minLength: 1 }),
  consumerId,
  receipts: receipts(1000),
  reason: Type.Optional(Type.String({ description: 'why (first 500 characters kept)' })),
  delayMs: Type.Optional(
    Type.Number({ minimum: 0, description: 'retry after this instead of the backoff' }),
  ),
});
