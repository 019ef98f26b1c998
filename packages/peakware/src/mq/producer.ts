/**
 * The producer SDK: `send` resolves when the broker has committed the message to
 * PostgreSQL. Sends and batches to one topic made within `lingerMs` of each other travel
 * together (one HTTP request, one statement), up to `maxBatch` messages and about 512 KiB,
 * as Kafka's linger and RocketMQ's batch send do; each call still gets its own answer: a
 * message the broker refuses fails only the call that sent it. Half (transactional)
 * messages: `sendTransactional` stores the message invisibly, runs the local transaction,
 * then commits or rolls back; if the producer dies in between, the broker asks `onCheck`
 * (poll started by `startCheckBack`) and acts on the answer.
 */
import { currentContext } from '../core/context.js';
import { type ControlPlaneOptions, serversOf } from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { KeyRing } from './body-cipher.js';
import { BrokerClient, type MqTransportOption } from './broker-client.js';
import type { OutgoingMessage, WireMessage } from './message-types.js';
import { type ConsumedMessage, fromWire, toWire } from './wire-encoding.js';

/** Most messages in one send request (the broker's limit). */
const BROKER_MAX_BATCH = 1000;
/**
 * Most messages coalesced into one request by default: larger requests leave fewer in
 * flight at once (in the mq bench, 8 senders of 100 coalesced into requests of 1 000 sent
 * about 4 500 messages/s, into requests of 200-250 about 6 300/s).
 */
const DEFAULT_MAX_BATCH = 256;
/** Most estimated bytes of messages coalesced into one request (the broker takes 1 MiB). */
const MAX_COALESCED_BYTES = 512 * 1024;

/** About how many bytes of JSON `wire` takes in a request. */
function wireBytes(wire: WireMessage): number {
  let n = 200 + wire.body.length + (wire.tag?.length ?? 0) + (wire.group?.length ?? 0);
  for (const k of wire.keys ?? []) n += k.length + 3;
  for (const [k, v] of Object.entries(wire.properties ?? {})) n += k.length + v.length + 6;
  return n;
}

/** Whether the broker refused a request for one of its messages (nothing was stored). */
function refusedForAMessage(err: unknown): boolean {
  const input = (err as { details?: { input?: unknown } }).details?.input;
  return typeof input === 'string' && input.startsWith('messages[');
}

/** Options of a {@link Producer}. */
export interface ProducerOptions extends ControlPlaneOptions, MqTransportOption {
  /** Produce secrets of secured topics: every message to them is HMAC-signed. */
  secrets?: Readonly<Record<string, string>>;
  /** Encrypt bodies (AES-256-GCM) with this key ring's current key. */
  encryption?: KeyRing;
  /** How long a send or batch waits for others to share its request, ms. Default 1. */
  lingerMs?: number;
  /** Most messages coalesced into one request, 1-1000. Default 256. */
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

/** One call's messages waiting to share a request. */
interface Pending {
  wires: WireMessage[];
  bytes: number;
  resolve: (r: SendResult[]) => void;
  reject: (e: unknown) => void;
}

/** The calls to one topic (real or stress traffic) waiting for the next request. */
interface Batch {
  topic: string;
  items: Pending[];
  count: number;
  bytes: number;
  timer: NodeJS.Timeout | undefined;
}

/** Sends messages to the broker. */
export class Producer {
  readonly #client: BrokerClient;
  readonly #o: ProducerOptions;
  readonly #maxBatch: number;
  readonly #batches = new Map<string, Batch>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #checkers: { stop: () => void; done: Promise<void> }[] = [];
  readonly #logger: Logger;

  constructor(options: ProducerOptions) {
    this.#o = options;
    this.#maxBatch = Math.min(BROKER_MAX_BATCH, Math.max(1, options.maxBatch ?? DEFAULT_MAX_BATCH));
    this.#client = new BrokerClient({
      servers: serversOf(options, 'Producer'),
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.transport === undefined ? {} : { transport: options.transport }),
    });
    this.#logger = options.logger ?? silentLogger();
  }

  /** Sends one message (sharing a request with concurrent sends to the same topic). */
  async send(topic: string, message: OutgoingMessage): Promise<SendResult> {
    const wire = toWire(topic, message, {
      secret: this.#o.secrets?.[topic],
      ring: this.#o.encryption,
    });
    const [result] = await this.#enqueue(topic, [wire]);
    return result!;
  }

  /**
   * Sends several messages as one batch: all stored, or none. Batches made within
   * `lingerMs` of each other share a request while they fit in `maxBatch` messages; a
   * refused message fails only its own batch.
   */
  async sendBatch(topic: string, messages: readonly OutgoingMessage[]): Promise<SendResult[]> {
    const wires = messages.map((m) =>
      toWire(topic, m, { secret: this.#o.secrets?.[topic], ring: this.#o.encryption }),
    );
    if (wires.length === 0 || wires.length >= this.#maxBatch) {
      const r = await this.#client.send(topic, wires);
      return r.ids.map((id) => ({ id, topic: r.topic }));
    }
    return this.#enqueue(topic, wires);
  }

  /** Queues one call's messages for the topic's next request. */
  #enqueue(topic: string, wires: WireMessage[]): Promise<SendResult[]> {
    const key = `${topic}\u0000${currentContext()?.stress === true ? 's' : ''}`;
    let bytes = 0;
    for (const w of wires) bytes += wireBytes(w);
    return new Promise((resolve, reject) => {
      let batch = this.#batches.get(key);
      if (
        batch !== undefined &&
        (batch.count + wires.length > this.#maxBatch || batch.bytes + bytes > MAX_COALESCED_BYTES)
      ) {
        this.#flush(key);
        batch = undefined;
      }
      if (batch === undefined) {
        batch = { topic, items: [], count: 0, bytes: 0, timer: undefined };
        this.#batches.set(key, batch);
      }
      batch.items.push({ wires, bytes, resolve, reject });
      batch.count += wires.length;
      batch.bytes += bytes;
      if (batch.count >= this.#maxBatch) this.#flush(key);
      else batch.timer ??= setTimeout(() => this.#flush(key), this.#o.lingerMs ?? 1);
    });
  }

  #flush(key: string): void {
    const batch = this.#batches.get(key);
    if (batch === undefined) return;
    this.#batches.delete(key);
    if (batch.timer !== undefined) clearTimeout(batch.timer);
    const p = this.#post(batch.topic, batch.items).finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  /**
   * Sends the calls' messages in one request and answers each call with its ids. When the
   * broker refuses the request for one message (nothing of it was stored), each call is
   * sent again on its own, so only the one with the bad message fails.
   */
  async #post(topic: string, items: readonly Pending[]): Promise<void> {
    let r: Awaited<ReturnType<BrokerClient['send']>>;
    try {
      r = await this.#client.send(
        topic,
        items.length === 1 ? items[0]!.wires : items.flatMap((i) => i.wires),
      );
    } catch (err) {
      if (items.length > 1 && refusedForAMessage(err)) {
        await Promise.all(items.map((i) => this.#post(topic, [i])));
        return;
      }
      for (const item of items) item.reject(err);
      return;
    }
    let n = 0;
    for (const item of items) {
      const ids = r.ids.slice(n, n + item.wires.length);
      n += item.wires.length;
      item.resolve(ids.map((id) => ({ id, topic: r.topic })));
    }
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
    this.#client.close();
  }
}
