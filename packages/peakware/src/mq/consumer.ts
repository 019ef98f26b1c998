/**
 * The consumer SDK: long-polls the broker for the queues this instance owns in its group,
 * runs `handler` for each message inside the producer's call context (a child span of
 * its trace, its stress flag and baggage), acks on success, nacks on a throw (retried
 * with backoff, then dead-lettered). At most `concurrency` messages are in the handler at
 * once: the per-consumer in-flight limit.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Backoff, sleep } from '../core/backoff.js';
import { childContext, runWithContext } from '../core/context.js';
import { decodeContext } from '../core/context-headers.js';
import { type ControlPlaneOptions, serversOf } from '../core/control-plane-client.js';
import { errorMessage, InvalidArgumentError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { KeyRing } from './body-cipher.js';
import { BrokerClient, type MqTransportOption, type Subscription } from './broker-client.js';
import { type ReceivedMessage, TopicNames } from './message-types.js';
import { type ConsumedMessage, fromWire } from './wire-encoding.js';

/** Acks gathered before a request is sent without waiting for {@link ACK_LINGER_MS}. */
const ACK_BATCH = 200;
/** How long an ack waits for others to share its request, ms. */
const ACK_LINGER_MS = 5;
/** Most receipts in one ack request (the broker's limit). */
const MAX_ACKS = 5000;

/** Waits after a failed receive or stream: 500 ms doubling to 5 s; a success starts over. */
const RETRY_BACKOFF = { initialMs: 500, maxMs: 5000 } as const;

/** Options of a {@link Consumer}; defaults written here. */
export interface ConsumerOptions extends ControlPlaneOptions, MqTransportOption {
  /** The consumer group. */
  group: string;
  topic: string;
  /** Runs per message; resolve = ack, throw = nack (retry later). Give this or `batchHandler`. */
  handler?: (message: ConsumedMessage) => Promise<void> | void;
  /**
   * Runs per batch of up to `batchSize` messages received together (RocketMQ's
   * `consumeMessageBatchMaxSize`): resolve acks them all, a throw nacks them all (each is
   * retried on its own schedule). It runs in the context of the batch's first message;
   * `traceConsumerBatch` (peakware/telemetry) makes one consumer span per message. Each
   * message of a batch counts against `concurrency`. Give this or `handler`.
   */
  batchHandler?: (messages: ConsumedMessage[]) => Promise<void> | void;
  /** Most messages per `batchHandler` call. Default 32. */
  batchSize?: number;
  /** Only these tags. Default: all. */
  tags?: readonly string[];
  /** Messages in the handler at once (in-flight limit). Default 16. */
  concurrency?: number;
  /**
   * Push: messages reach the handler as they arrive, at most `concurrency` unacked for this
   * consumer. With the default transport this is a long poll kept open with prefetch (on
   * the binary path where the node offers it): the next receive is on its way while the
   * handler runs, for the room `concurrency` leaves (RocketMQ's push consumer is built the
   * same way, on long-polling pulls). With `transport: 'http'` it is one long-lived
   * streamed response (NDJSON) in which the broker pushes deliveries while fewer than
   * `concurrency` are unacked, acks and nacks sent on the side. Default false.
   */
  push?: boolean;
  /** Broadcasting: every instance gets every message. Default false (clustering). */
  broadcasting?: boolean;
  /** Where a new group starts. Default `earliest`. */
  startFrom?: 'earliest' | 'latest';
  /** Retries before the DLQ. Default 16. */
  maxRetries?: number;
  /** The backoff ladder, ms. Default 10 s, 30 s, 1 m, 2 m ... 2 h. */
  backoffMs?: readonly number[];
  /** How long a delivered message stays invisible before redelivery if not acked. Default 30 s. */
  invisibleMs?: number;
  /** Long-poll wait, ms. Default 20 000. */
  waitMs?: number;
  /**
   * After a receive that came back with fewer messages than it asked for (the queue is
   * drained), wait this long before the next one, so messages arriving meanwhile come in
   * one receive instead of one each: fewer broker round trips and claims per message at
   * the cost of up to this much delivery latency (Kafka's `fetch.max.wait.ms` idea).
   * Default 0 (receive again at once).
   */
  lingerMs?: number;
  /** The consume secret of a secured topic. */
  secret?: string;
  /** Key ring for encrypted bodies. */
  encryption?: KeyRing;
  /** This instance's id. Default host-pid-random. */
  consumerId?: string;
  /** Consume the topic's shadow (stress-test) copy instead of the real one. */
  shadow?: boolean;
  logger?: Logger;
}

/** A running consumer. */
export class Consumer {
  readonly consumerId: string;
  readonly #o: ConsumerOptions;
  readonly #client: BrokerClient;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #batchSize: number;
  /** Messages waiting to be handed to `batchHandler` together. */
  #batch: ReceivedMessage[] = [];
  #batchFlush: NodeJS.Immediate | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #inflight = 0;
  #slot: (() => void) | undefined;
  #acks: string[] = [];
  #ackTimer: NodeJS.Timeout | undefined;
  /** The ack request on its way, if any: the next one waits for it (one in flight). */
  #ackCall: Promise<void> | undefined;
  readonly #pendingCalls = new Set<Promise<unknown>>();
  #abort = new AbortController();
  /** Aborted at close: ends a wait between failed tries at once. */
  #closing = new AbortController();

  constructor(options: ConsumerOptions) {
    if ((options.handler === undefined) === (options.batchHandler === undefined)) {
      throw new InvalidArgumentError('Consumer: give either handler or batchHandler', {
        details: { input: options.handler === undefined ? 'handler' : 'batchHandler' },
      });
    }
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new InvalidArgumentError(
        `Consumer: batchSize must be a positive integer, got ${options.batchSize}`,
        { details: { input: 'batchSize' } },
      );
    }
    this.#batchSize = batchSize;
    this.#o = options;
    this.consumerId =
      options.consumerId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.#client = new BrokerClient({
      servers: serversOf(options, 'Consumer'),
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.transport === undefined ? {} : { transport: options.transport }),
      ...(options.secret === undefined ? {} : { secret: options.secret }),
    });
    this.#topic = options.shadow === true ? TopicNames.shadow(options.topic) : options.topic;
    this.#logger = options.logger ?? silentLogger();
  }

  /** Starts receiving. */
  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#abort = new AbortController();
    this.#closing = new AbortController();
    this.#loop = this.#run();
    return this;
  }

  /** The subscription fields of receive and stream requests. */
  #subscription(): Subscription {
    return {
      topic: this.#topic,
      consumerId: this.consumerId,
      tags: this.#o.tags === undefined ? '*' : [...this.#o.tags],
      startFrom: this.#o.startFrom ?? 'earliest',
      broadcasting: this.#o.broadcasting === true,
      ...(this.#o.maxRetries === undefined ? {} : { maxRetries: this.#o.maxRetries }),
      ...(this.#o.backoffMs === undefined ? {} : { backoffMs: [...this.#o.backoffMs] }),
      ...(this.#o.invisibleMs === undefined ? {} : { invisibleMs: this.#o.invisibleMs }),
    };
  }

  /** Waits before the next try after a failure (500 ms doubling to 5 s), unless closing. */
  async #pause(retries: Backoff): Promise<void> {
    await sleep(retries.next(), this.#closing.signal).catch(() => undefined);
  }

  async #runPush(): Promise<void> {
    const limit = this.#o.concurrency ?? 16;
    const retries = new Backoff(RETRY_BACKOFF);
    while (this.#running) {
      try {
        for await (const line of this.#client.stream(
          this.#o.group,
          this.#subscription(),
          limit,
          this.#abort.signal,
        )) {
          retries.reset();
          this.#dispatch(JSON.parse(line) as ReceivedMessage);
          // Messages streamed in the same tick go to a batch handler together.
          if (this.#o.batchHandler !== undefined)
            this.#batchFlush ??= setImmediate(() => this.#flushBatch());
        }
      } catch (err) {
        if (!this.#running) break;
        this.#logger.warn({ err: errorMessage(err) }, 'mq: push stream failed; reopening it');
      }
      if (this.#running) await this.#pause(retries);
    }
  }

  /**
   * Whether this consumer reads an HTTP push stream: push over HTTP. Push over the binary
   * path is the long-poll loop (see {@link ConsumerOptions.push}).
   */
  get #streams(): boolean {
    return this.#o.push === true && !this.#client.binary;
  }

  async #run(): Promise<void> {
    if (this.#streams) return this.#runPush();
    const limit = this.#o.concurrency ?? 16;
    const retries = new Backoff(RETRY_BACKOFF);
    while (this.#running) {
      if (this.#inflight >= limit) {
        await new Promise<void>((r) => {
          this.#slot = r;
        });
        continue;
      }
      let messages: ReceivedMessage[];
      const max = limit - this.#inflight;
      // Acks waiting to be sent ride on this receive (unless an ack request is in flight:
      // acks stay in order behind it).
      const acks = this.#ackCall === undefined ? this.#acks.splice(0, MAX_ACKS) : [];
      if (acks.length > 0 && this.#acks.length === 0) {
        clearTimeout(this.#ackTimer);
        this.#ackTimer = undefined;
      }
      try {
        const wait = this.#o.waitMs ?? 20_000;
        ({ messages } = await this.#client.receive(
          this.#o.group,
          this.#subscription(),
          {
            max,
            waitMs: this.#inflight > 0 ? Math.min(wait, 200) : wait,
            ...(acks.length > 0 ? { acks } : {}),
          },
          { signal: this.#abort.signal },
        ));
        retries.reset();
      } catch (err) {
        // The acks it carried go again in an ack request of their own (a refused one is
        // refused there too, and logged, as acks are).
        if (acks.length > 0) {
          this.#acks.unshift(...acks);
          this.#flushAcks();
        }
        if (!this.#running) break;
        this.#logger.warn({ err: errorMessage(err) }, 'mq: receive failed; retrying');
        await this.#pause(retries);
        continue;
      }
      for (const m of messages) this.#dispatch(m);
      this.#flushBatch();
      const linger = this.#o.lingerMs ?? 0;
      if (linger > 0 && this.#running && messages.length < max)
        await sleep(linger, this.#closing.signal).catch(() => undefined);
    }
  }

  #dispatch(r: ReceivedMessage): void {
    this.#inflight++;
    if (this.#o.batchHandler !== undefined) {
      this.#batch.push(r);
      if (this.#batch.length >= this.#batchSize) this.#flushBatch();
      return;
    }
    const handler = this.#o.handler!;
    const run = async () => {
      const message = fromWire(r, this.#o.encryption);
      const ctx = childContext(decodeContext(r.properties));
      await runWithContext(ctx, () => handler(message));
    };
    this.#settle(run(), [r]);
  }

  /** Hands the messages gathered so far to `batchHandler` in one call. */
  #flushBatch(): void {
    if (this.#batchFlush !== undefined) clearImmediate(this.#batchFlush);
    this.#batchFlush = undefined;
    const handler = this.#o.batchHandler;
    if (handler === undefined || this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    const run = async () => {
      const messages = batch.map((r) => fromWire(r, this.#o.encryption));
      const ctx = childContext(decodeContext(batch[0]!.properties));
      await runWithContext(ctx, () => handler(messages));
    };
    this.#settle(run(), batch);
  }

  /** Acks `received` when `handled` resolves, nacks them when it throws; frees their slots. */
  #settle(handled: Promise<void>, received: readonly ReceivedMessage[]): void {
    handled
      .then(
        () => {
          for (const r of received) this.#ack(r.receipt);
        },
        (err) => {
          this.#logger.warn(
            { err: errorMessage(err), ids: received.map((r) => r.id) },
            'mq: handler failed; the message will be retried',
          );
          this.#track(
            this.#client.nack(
              this.#o.group,
              this.#topic,
              this.consumerId,
              received.map((r) => r.receipt),
              errorMessage(err).slice(0, 500),
            ),
          );
        },
      )
      .finally(() => {
        this.#inflight -= received.length;
        const s = this.#slot;
        this.#slot = undefined;
        s?.();
      });
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((err) =>
      this.#logger.warn(
        { err: errorMessage(err) },
        'mq: ack/nack failed; the message will be redelivered',
      ),
    );
    this.#pendingCalls.add(q);
    void q.finally(() => this.#pendingCalls.delete(q));
  }

  #ack(receipt: string): void {
    this.#acks.push(receipt);
    if (this.#acks.length >= ACK_BATCH) this.#flushAcks();
    else this.#ackTimer ??= setTimeout(() => this.#flushAcks(), this.#ackLingerMs());
  }

  /**
   * How long acks wait for company: {@link ACK_LINGER_MS}; a long-poll consumer with
   * `lingerMs` starts its next receive within that, and the acks ride on it instead of
   * taking a request of their own, so they wait up to `lingerMs` more.
   */
  #ackLingerMs(): number {
    const linger = this.#streams ? 0 : (this.#o.lingerMs ?? 0);
    return ACK_LINGER_MS + linger;
  }

  /**
   * Sends the acks gathered so far, at most {@link MAX_ACKS} a request and one request at
   * a time: acks that come while one is on its way go together in the next, when it
   * returns (group commit, as the broker does for half messages). Concurrent ack requests
   * of one receive would lock the same claim row and wait for each other's commit.
   */
  #flushAcks(): void {
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (this.#acks.length === 0 || this.#ackCall !== undefined) return;
    const receipts = this.#acks.splice(0, MAX_ACKS);
    const call = this.#client
      .ack(this.#o.group, this.#topic, this.consumerId, receipts)
      .then(
        () => undefined,
        (err) => {
          this.#logger.warn(
            { err: errorMessage(err) },
            'mq: ack/nack failed; the message will be redelivered',
          );
        },
      )
      .finally(() => {
        this.#ackCall = undefined;
        this.#flushAcks();
      });
    this.#ackCall = call;
  }

  /** Sends every ack gathered and waits until none is on its way. */
  async #drainAcks(): Promise<void> {
    this.#flushAcks();
    while (this.#ackCall !== undefined) {
      await this.#ackCall;
      this.#flushAcks();
    }
  }

  async #leave(): Promise<void> {
    await this.#client
      .leave(this.#o.group, this.#topic, this.consumerId, this.#o.broadcasting === true)
      .catch(() => undefined);
  }

  /**
   * Stops receiving, lets handlers finish (messages already handed out are still
   * processed), sends acks, and leaves the group so its queues move at once.
   */
  async close(): Promise<void> {
    this.#running = false;
    this.#closing.abort();
    const s = this.#slot;
    this.#slot = undefined;
    s?.();
    // A push stream is ended from this side at once (deliveries it carried that were not
    // read yet come back after their invisibility timeout).
    if (this.#streams) this.#abort.abort();
    // Leaving ends our long poll on the broker; abort only if that does not work.
    await this.#leave();
    const abort = setTimeout(() => this.#abort.abort(), 3000);
    await this.#loop?.catch(() => undefined);
    clearTimeout(abort);
    this.#flushBatch();
    const deadline = Date.now() + 10_000;
    while (this.#inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.#drainAcks();
    await Promise.allSettled([...this.#pendingCalls]);
    await this.#leave();
    this.#client.close();
  }
}
