/**
 * `peakware/mq`: the message queue SDK (producer, consumer, transactional enqueue into the
 * broker's database or an outbox in the application's own, body
 * encryption, signatures). The broker that `peak server` runs is in `server/`, not exported
 * here. See README.md.
 */
export { decryptBody, ENCRYPTION_PROPERTY, encryptBody, type KeyRing } from './body-cipher.js';
export {
  BrokerClient,
  type BrokerClientOptions,
  type CallOptions,
  type MqTransportOption,
} from './broker-client.js';
export { Consumer, type ConsumerOptions } from './consumer.js';
export { type SignedFields, signMessage, verifyMessage } from './message-signature.js';
export {
  DEFAULT_BACKOFF_MS,
  DEFAULT_MAX_RETRIES,
  MAX_DELAY_MS,
  type OutgoingMessage,
  type ReceivedMessage,
  TopicNames,
  type WireMessage,
} from './message-types.js';
export {
  Outbox,
  type OutboxOptions,
  type OutboxPool,
  type OutboxStats,
  type PreparedOutboxMessage,
  type SqlRunner,
} from './outbox.js';
export {
  Producer,
  type ProducerOptions,
  type SendResult,
  type TransactionState,
} from './producer.js';
export {
  type SendInTransactionOptions,
  type SqlClient,
  sendInTransaction,
} from './send-in-transaction.js';
export type { ConsumedMessage } from './wire-encoding.js';
