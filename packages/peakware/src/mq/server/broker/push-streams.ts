/**
 * Streamed push: one response stays open and deliveries are written to it as they come,
 * with at most `inflight` of the consumer's deliveries unacknowledged at once. Acks and
 * nacks (on their usual routes) make room; after a second with no ack the stream recounts
 * what the consumer still holds, so deliveries that timed out give their room back. The
 * claim loop is the long poll's (consume.ts).
 */
import type { ReceivedMessage } from '../../message-types.js';
import type { MessageStore } from '../message-store.js';
import type { BrokerRunState } from './broker-options.js';
import type { ReceiveRequest, Receiver } from './consume.js';

/** The push streams open on this node. */
export class PushStreams {
  readonly #store: MessageStore;
  readonly #receiver: Receiver;
  readonly #state: BrokerRunState;
  /** Open push streams by `group|topic|consumerId`: deliveries not yet acked or nacked. */
  readonly #open = new Map<string, { outstanding: number; wake: (() => void) | undefined }>();

  constructor(store: MessageStore, receiver: Receiver, state: BrokerRunState) {
    this.#store = store;
    this.#receiver = receiver;
    this.#state = state;
  }

  /**
   * Streamed push: hands deliveries to `send` as they become available, with at most
   * `inflight` of this consumer's deliveries unacknowledged at once (acks and nacks on the
   * side make room), until `signal` aborts, the consumer leaves or the server closes.
   * `idle` is called about once a second while nothing is sent (a keep-alive).
   */
  async stream(
    req: Omit<ReceiveRequest, 'max' | 'waitMs'>,
    inflight: number,
    send: (batch: ReceivedMessage[]) => Promise<void>,
    signal: AbortSignal,
    idle: () => void,
  ): Promise<void> {
    const key = `${req.group}|${req.topic}|${req.consumerId}`;
    const state = { outstanding: 0, wake: undefined as (() => void) | undefined };
    this.#open.set(key, state);
    const onAbort = () => state.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted && !this.#state.stopped && !this.#state.closing) {
        const room = inflight - state.outstanding;
        if (room <= 0) {
          const woken = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => done(false), 1000);
            const done = (byAck: boolean) => {
              clearTimeout(timer);
              state.wake = undefined;
              resolve(byAck);
            };
            state.wake = () => done(true);
          });
          if (!woken && !signal.aborted) {
            // A second with no ack: recount from the store. A delivery that timed out (and
            // went to another consumer) is never acked here, and would hold its room forever.
            const held = await this.#store.inflightOfConsumer(req.group, req.consumerId);
            state.outstanding = Math.min(state.outstanding, held);
          }
          idle();
          continue;
        }
        // A long wait (the keep-alive ticks beside it); the stream's end ends it at once.
        const keepAlive = setInterval(idle, 1000);
        let got: ReceivedMessage[];
        try {
          got = await this.#receiver.receive({ ...req, max: room, waitMs: 15_000, signal });
        } finally {
          clearInterval(keepAlive);
        }
        if (signal.aborted) break;
        if (got.length === 0) continue;
        state.outstanding += got.length;
        await send(got);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (this.#open.get(key) === state) this.#open.delete(key);
    }
  }

  /** Frees push-stream room after acks or nacks of `n` deliveries. */
  settled(group: string, topic: string, consumerId: string, n: number): void {
    const state = this.#open.get(`${group}|${topic}|${consumerId}`);
    if (state === undefined) return;
    state.outstanding = Math.max(0, state.outstanding - n);
    state.wake?.();
  }
}
