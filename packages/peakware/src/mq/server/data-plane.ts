/**
 * The broker's data-plane calls (send, subscribe, receive, ack, nack) as both ways in run
 * them: the HTTP routes (mq-routes.ts) and the RPC port (mq-rpc-service.ts). Each
 * takes the body its schema in mq-schemas.ts has checked and the caller its way in has
 * verified, makes the resource check (the topic, or the topic and group, named in the
 * caller's grants), and calls the broker, so a call means the same whichever way it came.
 */
import type { Static } from '@sinclair/typebox';
import { authorizeCaller, callerAllows, scopeResource } from '../../server/access.js';
import type { Caller } from '../../server/http-api.js';
import type { Broker } from './broker.js';
import { encodeDelivery, toBase64Message } from './http-body-encoding.js';
import type { ackBody, nackBody, receiveBody, sendBody, streamBody } from './mq-schemas.js';

/** Who calls, as its way in verified it, and the consume secret it showed (secured topics). */
export interface DataPlaneCaller {
  caller: Caller | undefined;
  secret: string | undefined;
}

/** Refuses a caller whose grants do not name `topic/group` for consuming. */
function mayConsume(c: DataPlaneCaller, topic: string, group: string): void {
  authorizeCaller(c.caller, 'consume', scopeResource('consume', topic, group));
}

/** The topics `c` may consume in `group` (receipts of others are refused). */
function consumable(c: DataPlaneCaller, group: string): (topic: string) => boolean {
  return (topic) => callerAllows(c.caller, 'consume', scopeResource('consume', topic, group));
}

/** Stores a send's messages (all or none), once the caller may produce to `topic`. */
export function sendMessages(
  broker: Broker,
  c: DataPlaneCaller,
  topic: string,
  body: Static<typeof sendBody>,
) {
  authorizeCaller(c.caller, 'produce', scopeResource('produce', topic));
  return broker.send(topic, body.messages.map(toBase64Message));
}

/** The broker's request of a subscription body (receive or stream), once the caller may consume it. */
export function subscriptionRequest(
  c: DataPlaneCaller,
  group: string,
  x: Static<typeof streamBody> | Static<typeof receiveBody>,
) {
  mayConsume(c, x.topic, group);
  return {
    group,
    topic: x.topic,
    consumerId: x.consumerId,
    tags: x.tags === undefined || x.tags === null || x.tags === '*' ? null : x.tags,
    startFrom: x.startFrom,
    broadcasting: x.broadcasting,
    maxRetries: x.maxRetries,
    backoffMs: x.backoffMs,
    invisibleMs: x.invisibleMs,
    secret: c.secret,
  };
}

/**
 * One long poll: the acks riding on it first (checked and applied as an ack is; they make
 * room in the window it claims from), then up to `max` deliveries. `gone` aborts when the
 * caller went away, so the poll claims nothing more for nobody.
 */
export async function receiveMessages(
  broker: Broker,
  c: DataPlaneCaller,
  group: string,
  x: Static<typeof receiveBody>,
  gone: AbortSignal,
) {
  const req = subscriptionRequest(c, group, x);
  if (x.acks !== undefined && x.acks.length > 0) {
    await broker.ack({
      group,
      topic: x.topic,
      consumerId: x.consumerId,
      receipts: x.acks,
      secret: c.secret,
      allowTopic: consumable(c, group),
    });
  }
  const messages = await broker.receive({ ...req, max: x.max, waitMs: x.waitMs, signal: gone });
  return { messages: messages.map((m) => encodeDelivery(m, x.encoding)) };
}

/** Acks deliveries by receipt. */
export function ackMessages(
  broker: Broker,
  c: DataPlaneCaller,
  group: string,
  x: Static<typeof ackBody>,
) {
  mayConsume(c, x.topic, group);
  return broker.ack({ group, ...x, secret: c.secret, allowTopic: consumable(c, group) });
}

/** Nacks deliveries by receipt: retried after their backoff, or dead-lettered. */
export function nackMessages(
  broker: Broker,
  c: DataPlaneCaller,
  group: string,
  x: Static<typeof nackBody>,
) {
  mayConsume(c, x.topic, group);
  return broker.nack({ group, ...x, secret: c.secret, allowTopic: consumable(c, group) });
}
