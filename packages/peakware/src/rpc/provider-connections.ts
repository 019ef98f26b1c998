/**
 * The provider's TCP side: every accepted connection, its frames, and the bounds that keep
 * a peer from holding the process's memory.
 *
 *   1. decode the frame (malformed → PEAK_RPC_PROTOCOL to that caller only; a stream that
 *      cannot be resynchronised is told why on id 0 and closed)
 *   2. a request runs through the hosted services' lifecycle (hosted-services.ts); its
 *      result or error goes back on its id (a call still running when its connection
 *      closes sees its `signal` abort); a ping is answered with a pong; an identity
 *      frame is verified once and the calls after it on the connection carry the result
 *   3. bounds: a peer that does not read its answers is not read either
 *      (`maxWriteBufferBytes`); incomplete frames share one budget over all connections
 *      (`maxPartialBytes`) and may stay incomplete only `frameTimeoutMs`; a connection
 *      silent for `idleTimeoutMs` is closed
 *
 * For a graceful stop it sends GOAWAY on every connection, tells when they went quiet, and
 * closes them.
 */
import type net from 'node:net';
import type { HeaderMap } from '../core/context-headers.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CallerVerifier, PresentedCaller } from './caller-identity.js';
import { encodeFrame, type Frame, FrameDecoder } from './frame-codec.js';
import { FrameWriter } from './frame-writer.js';
import type { ResolvedServerOptions } from './rpc-server-options.js';
import { toWireError } from './wire-error.js';

interface ConnState {
  socket: net.Socket;
  writer: FrameWriter;
  lastRequestAt: number;
  /** Bytes of an incomplete frame this connection holds (counted in the server's budget). */
  partial: number;
  /** When its current incomplete frame began, epoch ms; 0 when none. */
  partialSince: number;
  /** The identity this connection presented, verified, or why it was refused. */
  presented: PresentedCaller;
  /** While an identity's check waits for keys: requests after it wait for it. */
  identityPending: Promise<void> | undefined;
  /** Aborted when the connection closes: its calls still running learn their caller is gone. */
  gone: AbortController;
}

/** Runs one call (the hosted services' lifecycle). */
export type InvokeCall = (
  service: string,
  method: string,
  headers: HeaderMap,
  args: unknown,
  remote?: string,
  presented?: PresentedCaller,
  signal?: AbortSignal,
) => Promise<unknown>;

/** The bounds a {@link ProviderConnections} keeps, from the server's options. */
export type ConnectionBounds = Pick<
  ResolvedServerOptions,
  'maxFrameBytes' | 'maxWriteBufferBytes' | 'idleTimeoutMs' | 'maxPartialBytes' | 'frameTimeoutMs'
>;

/** The provider's open TCP connections. */
export class ProviderConnections {
  readonly #bounds: ConnectionBounds;
  readonly #logger: Logger;
  readonly #invoke: InvokeCall;
  readonly #verifier: CallerVerifier | undefined;
  readonly #conns = new Set<ConnState>();
  #partialBytes = 0;
  #partialSweep: NodeJS.Timeout | undefined;
  #draining = false;
  /** Set by {@link endAll}: requests arriving now are refused unrun (see there). */
  #closing = false;

  /** `verifier` checks the identities connections present (absent: identity frames are ignored). */
  constructor(
    bounds: ConnectionBounds,
    logger: Logger,
    invoke: InvokeCall,
    verifier?: CallerVerifier,
  ) {
    this.#bounds = bounds;
    this.#logger = logger;
    this.#invoke = invoke;
    this.#verifier = verifier;
  }

  /** Bytes held in incomplete frames over all connections (bounded by `maxPartialBytes`). */
  get partialBytes(): number {
    return this.#partialBytes;
  }

  /** Connections open now. */
  get size(): number {
    return this.#conns.size;
  }

  /** Takes a new connection; refused (destroyed) once draining. */
  accept(socket: net.Socket): void {
    if (this.#draining) {
      socket.destroy();
      return;
    }
    const conn: ConnState = {
      socket,
      writer: new FrameWriter(socket),
      lastRequestAt: Date.now(),
      partial: 0,
      partialSince: 0,
      presented: {},
      identityPending: undefined,
      gone: new AbortController(),
    };
    this.#conns.add(conn);
    const decoder = new FrameDecoder(this.#bounds.maxFrameBytes);
    socket.setTimeout(this.#bounds.idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(
          chunk,
          (frame) => this.#onFrame(conn, frame),
          (err) => this.#onBadFrame(conn, err),
        );
      } catch (err) {
        // The stream cannot be resynchronised (oversized or zero length): tell the peer why
        // on id 0 and close this connection only.
        this.#logger.warn(
          { err, remote: socket.remoteAddress },
          'closing a connection: broken frames',
        );
        this.#send(conn, { type: 3, id: 0, error: toWireError(err) });
        conn.writer.flush();
        socket.end();
        setTimeout(() => socket.destroy(), 500).unref();
      }
      this.#accountPartial(conn, decoder.buffered);
      if (conn.writer.buffered > this.#bounds.maxWriteBufferBytes && !socket.isPaused()) {
        // The peer is not reading its answers: stop reading its requests until it does.
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
    socket.on('error', (err) => this.#logger.debug({ err }, 'rpc connection error'));
    socket.on('close', () => {
      this.#releasePartial(conn);
      this.#conns.delete(conn);
      conn.gone.abort();
    });
  }

  /**
   * Graceful stop, first step: refuse new connections, stop the incomplete-frame sweep and
   * send GOAWAY on every connection (consumers stop picking this instance at once). What
   * still arrives on them is served.
   */
  goAway(): void {
    this.#draining = true;
    clearInterval(this.#partialSweep);
    this.#partialSweep = undefined;
    for (const conn of this.#conns) {
      this.#send(conn, { type: 6, reason: 'draining' });
      conn.writer.flush();
    }
  }

  /** When the last request arrived on any open connection, epoch ms (0 when none is open). */
  lastRequestAt(): number {
    let last = 0;
    for (const c of this.#conns) last = Math.max(last, c.lastRequestAt);
    return last;
  }

  /**
   * Graceful stop, last step: nothing is in flight and the connections were quiet. A
   * request may still be on its way (its consumer sent it before it read the GOAWAY, or
   * was starved of CPU in between): from now on such a request is answered "not run"
   * (`PEAK_RPC_SHUTTING_DOWN`, `sent: false`), which a failover consumer retries on another
   * instance, instead of being run with its answer lost to a closed socket. The
   * connections stay open for that answer: consumers close theirs once their last call on a
   * draining provider is answered, and {@link closed} destroys any left after its bound.
   */
  endAll(): void {
    this.#closing = true;
    for (const conn of this.#conns) conn.writer.flush();
  }

  /** Resolves once every connection has closed, destroying those still open after 1 s. */
  closed(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#conns.size === 0) return resolve();
      const t = setTimeout(() => {
        for (const c of this.#conns) c.socket.destroy();
        resolve();
      }, 1000);
      const check = setInterval(() => {
        if (this.#conns.size === 0) {
          clearTimeout(t);
          clearInterval(check);
          resolve();
        }
      }, 10);
      t.unref();
    });
  }

  /** Counts a connection's incomplete frame against the budget; closes it when over. */
  #accountPartial(conn: ConnState, buffered: number): void {
    if (conn.socket.destroyed) return;
    this.#partialBytes += buffered - conn.partial;
    conn.partial = buffered;
    if (buffered === 0) {
      conn.partialSince = 0;
      return;
    }
    if (conn.partialSince === 0) conn.partialSince = Date.now();
    this.#ensurePartialSweep();
    if (this.#partialBytes > this.#bounds.maxPartialBytes) {
      this.#dropPartial(
        conn,
        `this process holds ${this.#partialBytes} bytes of incomplete frames, over its budget of ${this.#bounds.maxPartialBytes} (maxPartialBytes); send whole frames, or fewer large ones at once`,
      );
    }
  }

  #releasePartial(conn: ConnState): void {
    this.#partialBytes -= conn.partial;
    conn.partial = 0;
    conn.partialSince = 0;
  }

  /** Closes a connection for its incomplete frame: tells the peer why on id 0. */
  #dropPartial(conn: ConnState, reason: string): void {
    this.#logger.warn({ remote: conn.socket.remoteAddress, bytes: conn.partial }, reason);
    this.#releasePartial(conn);
    this.#send(conn, {
      type: 3,
      id: 0,
      error: { code: ErrorCodes.RPC_OVERLOADED, message: `${reason}; the connection is closed` },
    });
    conn.writer.flush();
    conn.socket.end();
    conn.socket.destroy();
  }

  /** While any frame is incomplete, checks once a second for ones older than frameTimeoutMs. */
  #ensurePartialSweep(): void {
    if (this.#partialSweep !== undefined) return;
    const every = Math.max(10, Math.min(1000, Math.floor(this.#bounds.frameTimeoutMs / 2)));
    this.#partialSweep = setInterval(() => {
      const now = Date.now();
      let open = 0;
      for (const c of this.#conns) {
        if (c.partialSince === 0) continue;
        if (now - c.partialSince >= this.#bounds.frameTimeoutMs) {
          this.#dropPartial(
            c,
            `a frame stayed incomplete for ${now - c.partialSince} ms, over frameTimeoutMs ${this.#bounds.frameTimeoutMs}`,
          );
        } else {
          open++;
        }
      }
      if (open === 0) {
        clearInterval(this.#partialSweep);
        this.#partialSweep = undefined;
      }
    }, every);
    this.#partialSweep.unref();
  }

  #send(conn: ConnState, frame: Frame): void {
    let buf: Buffer;
    try {
      buf = encodeFrame(frame, this.#bounds.maxFrameBytes);
    } catch (err) {
      if (frame.type !== 2) throw err;
      buf = encodeFrame(
        { type: 3, id: frame.id, error: toWireError(err) },
        this.#bounds.maxFrameBytes,
      );
    }
    conn.writer.write(buf);
  }

  #onBadFrame(conn: ConnState, err: PeakError): void {
    const id = err.details.id;
    this.#send(conn, { type: 3, id: typeof id === 'number' ? id : 0, error: toWireError(err) });
  }

  #onFrame(conn: ConnState, frame: Frame): void {
    switch (frame.type) {
      case 1:
        conn.lastRequestAt = Date.now();
        if (this.#closing) {
          this.#send(conn, {
            type: 3,
            id: frame.id,
            error: toWireError(
              new PeakError(
                ErrorCodes.RPC_SHUTTING_DOWN,
                'the provider is stopping and answered its last call; the call did not run, retry elsewhere',
                { details: { sent: false } },
              ),
            ),
          });
          conn.writer.flush();
          return;
        }
        this.#handleRequest(conn, frame);
        return;
      case 4:
        this.#send(conn, { type: 5, id: frame.id });
        return;
      case 7:
        this.#onIdentity(conn, frame.token);
        return;
      default:
        return;
    }
  }

  /** Checks a connection's identity once; the calls that follow on it carry the result. */
  #onIdentity(conn: ConnState, token: string): void {
    const verifier = this.#verifier;
    if (verifier === undefined) return;
    const settle = (presented: PresentedCaller) => {
      conn.presented = presented;
    };
    try {
      const result = verifier.verify(token);
      if (!(result instanceof Promise)) {
        settle({ caller: result });
        return;
      }
      const pending = result.then(
        (caller) => settle({ caller }),
        (refused: unknown) => settle({ refused }),
      );
      conn.identityPending = pending;
      void pending.then(() => {
        if (conn.identityPending === pending) conn.identityPending = undefined;
      });
    } catch (refused) {
      settle({ refused });
    }
  }

  #handleRequest(conn: ConnState, frame: Extract<Frame, { type: 1 }>): void {
    if (conn.identityPending !== undefined) {
      const pending = conn.identityPending;
      void pending.then(() => this.#handleRequest(conn, frame));
      return;
    }
    this.#invoke(
      frame.service,
      frame.method,
      frame.headers,
      frame.args,
      conn.socket.remoteAddress,
      conn.presented,
      conn.gone.signal,
    ).then(
      (result) => this.#send(conn, { type: 2, id: frame.id, result }),
      (err) => this.#send(conn, { type: 3, id: frame.id, error: toWireError(err) }),
    );
  }
}
