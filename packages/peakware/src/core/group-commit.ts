/**
 * Group commit, as RocketMQ's CommitLog does it: writes that arrive while one is being
 * committed wait and go together in the next commit. Each durable commit costs a WAL flush
 * (about 2 ms on the machines here, and they do not overlap much), so one statement per
 * half message or per commit capped the transactional path at a few hundred a second;
 * batched, the flush is shared by everyone who arrived during the previous one.
 *
 * A batch runs at most `maxBatch` items; a failed batch fails every item in it (the callers
 * see the error and nothing of that batch was committed). A batch runs outside any call
 * context: it is no single caller's work, so no caller's deadline, trace or stress flag
 * applies to it (a runner that needs one sets it for the batch).
 */
import { runWithoutContext } from './context.js';

/** Runs one batch: returns one result per item, in order. */
export type BatchRunner<I, O> = (items: I[]) => Promise<O[]>;

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

/** Coalesces concurrent writes into batches, one batch in flight at a time. */
export class GroupCommit<I, O> {
  readonly #run: BatchRunner<I, O>;
  readonly #maxBatch: number;
  #queue: Waiting<I, O>[] = [];
  #running = false;
  #scheduled = false;

  constructor(run: BatchRunner<I, O>, maxBatch = 500) {
    this.#run = run;
    this.#maxBatch = maxBatch;
  }

  /** Queues `item` for the next batch; resolves with its result once that batch commits. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      // The first write of a quiet period goes at the end of this turn, so the other
      // requests parsed in the same turn join it; later ones wait for the batch in flight.
      if (!this.#running && !this.#scheduled) {
        this.#scheduled = true;
        runWithoutContext(() =>
          setImmediate(() => {
            this.#scheduled = false;
            void this.#drain();
          }),
        );
      }
    });
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        try {
          const results = await this.#run(batch.map((w) => w.item));
          batch.forEach((w, i) => {
            w.resolve(results[i] as O);
          });
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
