/**
 * The producer SDK: `send` resolves when the broker has committed the message to
 * PostgreSQL. Sends to one topic made within `lingerMs` of each other travel as one batch
 * (one HTTP request, one transaction). Half (transactional) messages: `sendTransactional`
 * stores the message invisibly, runs the local transaction, then commits or rolls back;
 * if the producer dies in between, the broker asks `onCheck` (poll started by
 * `startCheckBack`) and acts on the answer.
 */
import { currentContext } from '../core/context.js';
import { type ControlPlaneOptions, serversOf } from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { KeyRing } from './body-cipher.js';
import { BrokerClient } from './broker-client.js';
import type { OutgoingMessage, WireMessage } from './message-types.js';
import { type ConsumedMessage, fromWire, toWire } from './wire-encoding.js';

/** Options of a {@link Producer}. */
export interface ProducerOptions extends ControlPlaneOptions {
  /** Produce secrets of secured topics: every message to them is HMAC-signed. */
  secrets?: Readonly<Record<string, string>>;
  /** Encrypt bodies (AES-256-GCM) with this key ring's current key. */
  encryption?: KeyRing;
  /** How long a send waits for others to share its batch, ms. Default 1. */
  lingerMs?: number;
  /** Largest batch, messages. Default 500. */
  maxBatch?: number;
  /** Where problems are logged. */
  logger?: Logger;
}

/** What a successful send returns. */
export interface SendResult {
  id: string;
  /** The topic it was stored in (a shadow topic for stress traffic). */
  topic: string;
}

/** A local transaction's verdict on a half message. */
export type TransactionState = 'commit' | 'rollback' | 'unknown';

interface Pending {
  wire: WireMessage;
  resolve: (r: SendResult) => void;
  reject: (e: unknown) => void;
}

/** Sends messages to the broker. */
export class Producer {
  readonly #client: BrokerClient;
  readonly #o: ProducerOptions;
  readonly #batches = new Map<
    string,
    { topic: string; items: Pending[]; timer: NodeJS.Timeout | undefined }
  >();
  readonly #inflight = new Set<Promise<void>>();
  readonly #checkers: { stop: () => void; done: Promise<void> }[] = [];
  readonly #logger: Logger;

  constructor(options: ProducerOptions) {
    this.#o = options;
    this.#client = new BrokerClient({
      servers: serversOf(options, 'Producer'),
      ...(options.token === undefined ? {} : { token: options.token }),
    });
    this.#logger = options.logger ?? silentLogger();
  }

  /** Sends one message (batched with concurrent sends to the same topic). */
  send(topic: string, message: OutgoingMessage): Promise<SendResult> {
    let wire: WireMessage;
    try {
      wire = toWire(topic, message, { secret: this.#o.secrets?.[topic], ring: this.#o.encryption });
    } catch (err) {
      return Promise.reject(err);
    }
    const key = `${topic}\u0000${currentContext()?.stress === true ? 's' : ''}`;
    return new Promise((resolve, reject) => {
      let batch = this.#batches.get(key);
      if (batch === undefined) {
        batch = { topic, items: [], timer: undefined };
        this.#batches.set(key, batch);
      }
      batch.items.push({ wire, resolve, reject });
      if (batch.items.length >= (this.#o.maxBatch ?? 500)) this.#flush(key);
      else batch.timer ??= setTimeout(() => this.#flush(key), this.#o.lingerMs ?? 1);
    });
  }

  /** Sends several messages as one batch: all stored, or none. */
  async sendBatch(topic: string, messages: readonly OutgoingMessage[]): Promise<SendResult[]> {
    const wire = messages.map((m) =>
      toWire(topic, m, { secret: this.#o.secrets?.[topic], ring: this.#o.encryption }),
    );
    const r = await this.#client.send(topic, wire);
    return r.ids.map((id) => ({ id, topic: r.topic }));
  }

  #flush(key: string): void {
    const batch = this.#batches.get(key);
    if (batch === undefined) return;
    this.#batches.delete(key);
    if (batch.timer !== undefined) clearTimeout(batch.timer);
    const items = batch.items;
    const p = this.#client
      .send(
        batch.topic,
        items.map((i) => i.wire),
      )
      .then(
        (r) => {
          for (const [n, item] of items.entries())
            item.resolve({ id: r.ids[n] ?? '', topic: r.topic });
        },
        (err) => {
          for (const item of items) item.reject(err);
        },
      )
      .finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  /**
   * Half message: stores `message` invisibly, runs `local`, then commits (delivered) or
   * rolls back (never delivered). If `local` throws, the message is rolled back; if the
   * commit/rollback call is lost, the broker's check-back resolves it.
   */
  async sendTransactional(
    topic: string,
    message: OutgoingMessage,
    producerGroup: string,
    local: (id: string) => Promise<TransactionState> | TransactionState,
  ): Promise<{ id: string; state: TransactionState }> {
    const wire = toWire(topic, message, {
      secret: this.#o.secrets?.[topic],
      ring: this.#o.encryption,
    });
    const { id } = await this.#client.sendHalf(topic, wire, producerGroup);
    let state: TransactionState;
    try {
      state = await local(id);
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err), id },
        'mq: local transaction failed; rolling back the half message',
      );
      state = 'rollback';
    }
    if (state !== 'unknown')
      await this.#client.endHalf(id, state, 'producer', this.#o.secrets?.[topic]);
    return { id, state };
  }

  /**
   * Answers the broker's check-backs for a producer group: polls for half messages left
   * unresolved and resolves each with `onCheck`'s verdict. Stops on {@link close}.
   */
  startCheckBack(
    producerGroup: string,
    onCheck: (m: ConsumedMessage) => Promise<TransactionState> | TransactionState,
    pollMs = 1000,
  ): void {
    let stopped = false;
    let wake: (() => void) | undefined;
    const done = (async () => {
      while (!stopped) {
        try {
          const { checks } = await this.#client.checks(producerGroup, 100, this.#o.secrets ?? {});
          for (const c of checks) {
            const state = await onCheck(fromWire(c, this.#o.encryption));
            if (state !== 'unknown') {
              await this.#client
                .endHalf(c.id, state, 'check-back', this.#o.secrets?.[c.topic])
                .catch((err) => {
                  this.#logger.warn(
                    { err: errorMessage(err), id: c.id },
                    'mq: check-back answer failed',
                  );
                });
            }
          }
        } catch (err) {
          this.#logger.warn({ err: errorMessage(err) }, 'mq: check-back poll failed');
        }
        if (stopped) break;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, pollMs).unref();
        });
      }
    })();
    this.#checkers.push({
      stop: () => {
        stopped = true;
        wake?.();
      },
      done,
    });
  }

  /** Sends what is batched, waits for in-flight sends, stops check-back polls. */
  async close(): Promise<void> {
    for (const key of [...this.#batches.keys()]) this.#flush(key);
    await Promise.allSettled([...this.#inflight]);
    for (const c of this.#checkers) c.stop();
    await Promise.allSettled(this.#checkers.map((c) => c.done));
  }
}
