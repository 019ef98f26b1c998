/**
 * The broker's service on the control plane's RPC port (`peakware/rpc`'s control-plane-path.ts
 * on the SDK side, server/mq-rpc-service.ts on the broker's): producers and consumers call
 * send, receive, ack and nack over one persistent, multiplexed connection instead of an HTTP
 * request each. A call's argument is the HTTP route's body plus what the route took from its
 * path and headers; the answer is the route's answer.
 */

/** The service the broker hosts on the RPC port (`name:version`). */
export const MQ_RPC_SERVICE = 'peak.mq:1';

/** The calls of the binary path (the rest of the API stays HTTP). */
export type MqRpcMethod = 'send' | 'receive' | 'ack' | 'nack';

/** One call's argument. */
export interface MqRpcArgs {
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
