/**
 * Batches frames written to one socket within an event-loop turn into a single write, and
 * tells the caller how much is buffered so it can push back instead of queueing without
 * bound.
 */
import type { Socket } from 'node:net';

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

  /** Queues a frame; it goes out with the others of this turn. */
  write(frame: Buffer): void {
    this.#queue.push(frame);
    this.#queued += frame.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Writes everything queued now. */
  flush(): void {
    this.#flush();
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#queue.length === 0) return;
    const data =
      this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#queued);
    this.#queue = [];
    this.#queued = 0;
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.write(data);
  };
}
