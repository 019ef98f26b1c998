/**
 * Batches frames written to one socket within an event-loop turn into a single write, and
 * tells the caller how much is buffered so it can push back instead of queueing without
 * bound.
 */
import type { Socket } from 'node:net';

/** A batch this large is written at once instead of waiting for the end of the turn. */
export const FLUSH_BYTES = 64 * 1024;

/** A batching writer for one socket. */
export class FrameWriter {
  readonly #socket: Socket;
  #queue: Buffer[] = [];
  #queued = 0;
  #scheduled = false;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Bytes written but not yet handed to the kernel. */
  get buffered(): number {
    return this.#queued + this.#socket.writableLength;
  }

  /**
   * Queues a frame; it goes out with the others of this turn, or at once when the batch
   * reaches {@link FLUSH_BYTES} (so the peer starts on the first answers while later ones
   * are still being produced).
   */
  write(frame: Buffer): void {
    this.#queue.push(frame);
    this.#queued += frame.length;
    if (this.#queued >= FLUSH_BYTES) {
      this.#flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#onImmediate);
    }
  }

  /** Writes everything queued now. */
  flush(): void {
    this.#flush();
  }

  readonly #onImmediate = (): void => {
    this.#scheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#queue.length === 0) return;
    const data =
      this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#queued);
    this.#queue = [];
    this.#queued = 0;
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.write(data);
  }
}
