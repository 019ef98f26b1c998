/**
 * The MQ binary data path's contract, shared by the SDK (binary-path.ts) and the broker
 * (server/binary-endpoint.ts): producers and consumers call the broker's send, receive,
 * ack and nack over one persistent, multiplexed connection with the RPC framing
 * (`peakware/rpc`: length-prefixed msgpack frames, many calls in flight, heartbeats)
 * instead of an HTTP request each. A call's argument is the HTTP route's body plus what
 * the route took from its path and headers; the answer is the route's answer.
 */

/** The service the broker's binary endpoint hosts (`name:version`). */
export const MQ_BINARY_SERVICE = 'peak.mq:1';

/** The calls of the binary path (the rest of the API stays HTTP). */
export type MqBinaryMethod = 'send' | 'receive' | 'ack' | 'nack';

/** One call's argument. */
export interface MqBinaryArgs {
  /** The credential, as HTTP's `authorization: Bearer` carries it: checked on every call. */
  token?: string;
  /** A secured topic's consume secret (HTTP's `x-peak-mq-secret`). */
  secret?: string;
  /** `send`: the topic. */
  topic?: string;
  /** `receive`, `ack`, `nack`: the consumer group. */
  group?: string;
  /** The HTTP route's body, checked against the same schema. */
  body: unknown;
}

/** Where a node's binary endpoint is (`GET` {@link MQ_BINARY_ROUTE}). */
export type MqBinaryEndpointInfo =
  | { available: true; host: string; port: number }
  | { available: false; reason: string };

/** The route that tells a client where the binary endpoint of the node it reached is. */
export const MQ_BINARY_ROUTE = '/api/v1/mq/binary';
