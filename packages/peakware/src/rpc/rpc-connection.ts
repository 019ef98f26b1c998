/**
 * The consumer's side of one persistent, multiplexed TCP connection to one provider
 * address: many calls in flight at once, matched by frame id; heartbeats; reconnect with
 * exponential backoff; bounded pending calls and write buffer (backpressure is an
 * immediate PEAK_RPC_OVERLOADED, never an unbounded queue).
 *
 * Dead providers are left alone at once: after the connection closed or a connect failed,
 * it is not offered to balancers again until a reconnect (in the background, with
 * backoff) has opened it and the provider answered a ping on it; and a provider that
 * stops answering (a stopped or hung process, whose socket stays open) is probed: when
 * calls are pending and nothing arrived for `probeMs`, a ping goes out, and with no answer
 * within another `probeMs` the connection is marked unresponsive (not picked) until
 * anything arrives from it again.
 */
import type net from 'node:net';
import { Backoff } from '../core/backoff.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { IdentitySource } from './caller-identity.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FrameDecoder,
  type WireError,
} from './frame-codec.js';
import { FrameWriter } from './frame-writer.js';
import { type Transport, tcpTransport } from './transport.js';

/** Options of a {@link RpcConnection}; defaults are in {@link CONNECTION_DEFAULTS}. */
export interface ConnectionOptions {
  maxFrameBytes?: number;
  /** Most calls pending on this connection. */
  maxPending?: number;
  /** Most bytes waiting to be written before new calls are refused. */
  maxWriteBufferBytes?: number;
  /** Ping after this long without traffic; the peer is dead after 3 of these. */
  heartbeatMs?: number;
  /**
   * With calls pending and nothing received for this long, ping; with no answer within as
   * long again, stop picking this provider until it answers. 0 turns the probe off.
   */
  probeMs?: number;
  connectTimeoutMs?: number;
  /** First reconnect delay; doubles up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How bytes move (TCP, TLS). Default {@link tcpTransport}. */
  transport?: Transport;
  /**
   * The signed identity to present (sent once per connection, and again when it changes);
   * absent: calls go without one.
   */
  identity?: IdentitySource;
  /**
   * Whether the open socket alone keeps the process running (default true). False: only
   * calls waiting for an answer do (their timers), as an idle keep-alive HTTP socket does
   * not; for a client inside an SDK object the user may never close.
   */
  holdsProcess?: boolean;
  logger?: Logger;
}

/** Defaults of {@link ConnectionOptions}, written once. */
export const CONNECTION_DEFAULTS = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxPending: 10_000,
  maxWriteBufferBytes: 16 * 1024 * 1024,
  heartbeatMs: 5000,
  probeMs: 1000,
  connectTimeoutMs: 3000,
  backoffMs: 100,
  maxBackoffMs: 5000,
} as const;

/** Connection state as the balancer sees it. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

interface Pending {
  resolve(value: unknown): void;
  reject(err: PeakError): void;
  timer: NodeJS.Timeout | undefined;
}

/** Builds the PeakError a wire error describes. */
export function fromWireError(error: WireError, address: string): PeakError {
  return new PeakError(error.code as PeakError['code'], error.message, {
    details: { ...(error.details ?? {}), provider: address },
  });
}

/** One TCP connection to a provider address, reconnecting on its own until closed. */
export class RpcConnection {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  readonly #opts: Required<
    Omit<ConnectionOptions, 'logger' | 'transport' | 'identity' | 'holdsProcess'>
  > &
    Pick<ConnectionOptions, 'holdsProcess'>;
  readonly #transport: Transport;
  readonly #identity: IdentitySource | undefined;
  /** The identity last sent on the current socket. */
  #sentIdentity: string | undefined;
  readonly #logger: Logger | undefined;
  #state: ConnectionState = 'idle';
  #socket: net.Socket | undefined;
  #writer: FrameWriter | undefined;
  #connected: Promise<void> | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  readonly #backoff: Backoff;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastReceived = 0;
  #draining = false;
  /** The last connection closed or the last connect failed; cleared when one opens. */
  #failed = false;
  /** Calls are pending and the provider did not answer a probe. */
  #unresponsive = false;
  #probe: NodeJS.Timeout | undefined;
  /** When the last probe ping went out, epoch ms (0: none since the last answer). */
  #probeSentAt = 0;
  #closeReason: string | undefined;
  /** Called when the provider announces it is draining (GOAWAY). */
  onGoAway: (() => void) | undefined;
  /** Called whenever the state changes. */
  onStateChange: ((state: ConnectionState) => void) | undefined;

  constructor(host: string, port: number, options: ConnectionOptions = {}) {
    this.host = host;
    this.port = port;
    this.address = `${host}:${port}`;
    this.#logger = options.logger;
    const { logger: _l, transport, identity, ...rest } = options;
    this.#opts = { ...CONNECTION_DEFAULTS, ...rest };
    this.#transport = transport ?? tcpTransport;
    this.#identity = identity;
    this.#backoff = new Backoff({
      initialMs: this.#opts.backoffMs,
      maxMs: this.#opts.maxBackoffMs,
    });
  }

  /** The state: `idle` before first use, `backoff` after a failure, `closed` for good. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Calls awaiting an answer on this connection. */
  get pending(): number {
    return this.#pending.size;
  }

  /** True after the provider sent GOAWAY: it finishes what it has but takes nothing new. */
  get draining(): boolean {
    return this.#draining;
  }

  /** True while the provider has not answered a probe (see the module comment). */
  get unresponsive(): boolean {
    return this.#unresponsive;
  }

  /**
   * Whether a balancer may pick this connection for a new call: open, or not yet tried;
   * not after a failure until a reconnect opened it, not draining, not unresponsive.
   */
  get available(): boolean {
    if (this.#draining || this.#unresponsive) return false;
    if (this.#state === 'open') return true;
    return !this.#failed && (this.#state === 'idle' || this.#state === 'connecting');
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.onStateChange?.(state);
  }

  /** Opens the connection now (calls do it lazily). */
  connect(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(this.#unavailable('the client is closed'));
    if (this.#connected !== undefined) return this.#connected;
    this.#setState('connecting');
    const connected = new Promise<void>((resolve, reject) => {
      const socket = this.#transport.connect(this.host, this.port);
      const timer = setTimeout(() => {
        socket.destroy(new Error(`connect timed out after ${this.#opts.connectTimeoutMs} ms`));
      }, this.#opts.connectTimeoutMs);
      socket.once(this.#transport.readyEvent, () => {
        clearTimeout(timer);
        this.#backoff.reset();
        this.#draining = false;
        const reopened = this.#failed;
        this.#failed = false;
        this.#attach(socket);
        if (reopened) {
          // After a failure, an accepted connection proves little (the kernel accepts for a
          // stopped process): not picked until the provider answers a ping.
          this.#unresponsive = true;
          this.#write({ type: 4, id: 0 });
        }
        this.#setState('open');
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        if (this.#socket !== socket) {
          // Failed before it was attached: a connect failure; nothing was sent.
          this.#failed = true;
          reject(this.#unavailable(`cannot connect: ${err.message}`));
          this.#connected = undefined;
          this.#scheduleReconnect();
        }
      });
    });
    this.#connected = connected;
    // Waiters handle the rejection; keep it from being reported as unhandled.
    connected.catch(() => undefined);
    return connected;
  }

  #unavailable(reason: string): PeakError {
    return new PeakError(
      ErrorCodes.RPC_UNAVAILABLE,
      `provider ${this.address} is unavailable (${reason}); the call was not sent`,
      { details: { provider: this.address, sent: false } },
    );
  }

  #attach(socket: net.Socket): void {
    this.#socket = socket;
    if (this.#opts.holdsProcess === false) socket.unref();
    this.#writer = new FrameWriter(socket);
    this.#sentIdentity = undefined;
    this.#lastReceived = Date.now();
    const decoder = new FrameDecoder(this.#opts.maxFrameBytes);
    socket.on('data', (chunk: Buffer) => {
      this.#lastReceived = Date.now();
      this.#probeSentAt = 0;
      if (this.#unresponsive) {
        this.#unresponsive = false;
        this.#logger?.info({ provider: this.address }, 'provider answers again');
      }
      try {
        decoder.push(chunk, this.#onFrame, (err) => this.#onBadFrame(err));
      } catch (err) {
        this.#logger?.warn({ err, provider: this.address }, 'broken frame stream; reconnecting');
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      this.#logger?.debug({ err, provider: this.address }, 'connection error');
    });
    socket.on('close', () => this.#onClose(socket));
    const beat = this.#opts.heartbeatMs;
    this.#heartbeat = setInterval(() => {
      const idle = Date.now() - this.#lastReceived;
      if (idle > beat * 3) {
        this.#logger?.warn({ provider: this.address, idleMs: idle }, 'provider missed heartbeats');
        socket.destroy();
      } else if (idle >= beat) {
        this.#write({ type: 4, id: 0 });
      }
    }, beat);
    this.#heartbeat.unref();
  }

  readonly #onFrame = (frame: Frame): void => {
    switch (frame.type) {
      case 2: {
        const p = this.#take(frame.id);
        p?.resolve(frame.result);
        return;
      }
      case 3: {
        // Id 0 is the provider explaining why it is about to close the connection.
        if (frame.id === 0) this.#closeReason = `${frame.error.code}: ${frame.error.message}`;
        const p = this.#take(frame.id);
        p?.reject(fromWireError(frame.error, this.address));
        return;
      }
      case 4:
        this.#write({ type: 5, id: frame.id });
        return;
      case 6:
        if (!this.#draining) {
          this.#draining = true;
          this.#logger?.debug(
            { provider: this.address, reason: frame.reason },
            'provider draining',
          );
          this.onGoAway?.();
          this.#closeIfDrained();
        }
        return;
      default:
        return;
    }
  };

  #onBadFrame(err: PeakError): void {
    const id = err.details.id;
    if (typeof id === 'number') this.#take(id)?.reject(err);
    this.#logger?.warn({ err, provider: this.address }, 'malformed frame from provider');
  }

  #take(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (p === undefined) return undefined;
    this.#pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (this.#draining) queueMicrotask(() => this.#closeIfDrained());
    return p;
  }

  /**
   * After GOAWAY, once the last call on this connection is answered, closes it from this
   * side: the provider then knows nothing more is coming on it, and its graceful stop ends
   * without closing under a call that is still on its way (a stopping provider keeps its
   * connections open for that and answers such a call "not run").
   */
  #closeIfDrained(): void {
    if (!this.#draining || this.#pending.size > 0) return;
    this.#socket?.end();
  }

  #onClose(socket: net.Socket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#writer = undefined;
    this.#connected = undefined;
    this.#failed = true;
    this.#unresponsive = false;
    this.#probeSentAt = 0;
    clearInterval(this.#heartbeat);
    clearInterval(this.#probe);
    this.#probe = undefined;
    const lost = [...this.#pending.values()];
    this.#pending.clear();
    const reason =
      this.#closeReason === undefined ? '' : ` (the provider said: ${this.#closeReason})`;
    this.#closeReason = undefined;
    for (const p of lost) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(
        new PeakError(
          ErrorCodes.RPC_CONNECTION_LOST,
          `the connection to ${this.address} broke while the call was in flight; it may or may not have run${reason}`,
          { details: { provider: this.address, sent: true } },
        ),
      );
    }
    if (this.#state !== 'closed') this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#state === 'closed') return;
    this.#setState('backoff');
    const delay = this.#backoff.next();
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state === 'backoff') this.connect().catch(() => undefined);
    }, delay);
    this.#reconnectTimer.unref();
  }

  #write(frame: Frame): void {
    this.#writer?.write(encodeFrame(frame, this.#opts.maxFrameBytes));
  }

  /**
   * Sends a request and resolves with the raw result. Rejects with PEAK_RPC_UNAVAILABLE or
   * PEAK_RPC_OVERLOADED (not sent), PEAK_RPC_TIMEOUT, PEAK_RPC_CONNECTION_LOST (sent, outcome
   * unknown) or the provider's error.
   */
  call(
    service: string,
    method: string,
    headers: Record<string, string>,
    args: unknown,
    timeoutMs: number,
  ): Promise<unknown> {
    if (this.#state !== 'open') {
      if (this.#state === 'backoff') {
        return Promise.reject(this.#unavailable('reconnecting after a failure'));
      }
      return this.connect().then(() => this.call(service, method, headers, args, timeoutMs));
    }
    try {
      return this.#send(service, method, headers, args, timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #send(
    service: string,
    method: string,
    headers: Record<string, string>,
    args: unknown,
    timeoutMs: number,
  ): Promise<unknown> {
    if (this.#pending.size >= this.#opts.maxPending) {
      throw new PeakError(
        ErrorCodes.RPC_OVERLOADED,
        `${this.#pending.size} calls are already pending on ${this.address} (maxPending ${this.#opts.maxPending}); the call was not sent`,
        { details: { provider: this.address, sent: false } },
      );
    }
    const writer = this.#writer;
    if (writer === undefined) throw this.#unavailable('the connection just closed');
    if (writer.buffered > this.#opts.maxWriteBufferBytes) {
      throw new PeakError(
        ErrorCodes.RPC_OVERLOADED,
        `${writer.buffered} bytes are waiting to be written to ${this.address} (limit ${this.#opts.maxWriteBufferBytes}); the call was not sent`,
        { details: { provider: this.address, sent: false } },
      );
    }
    if (this.#identity !== undefined) {
      // Once per connection, and again after a renewal: the provider keeps it for the
      // calls that follow, so a call carries no identity of its own.
      const token = this.#identity.current();
      if (token !== undefined && token !== this.#sentIdentity) {
        this.#sentIdentity = token;
        writer.write(encodeFrame({ type: 7, id: 0, token }, this.#opts.maxFrameBytes));
      }
    }
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
    const frame = encodeFrame(
      { type: 1, id, service, method, headers, args },
      this.#opts.maxFrameBytes,
    );
    return new Promise<unknown>((resolve, reject) => {
      const pending: Pending = { resolve, reject, timer: undefined };
      if (Number.isFinite(timeoutMs)) {
        pending.timer = setTimeout(
          () => {
            if (this.#pending.get(id) !== pending) return;
            this.#pending.delete(id);
            reject(
              new PeakError(
                ErrorCodes.RPC_TIMEOUT,
                `${service}.${method} on ${this.address} did not answer within ${Math.round(timeoutMs)} ms`,
                {
                  details: { provider: this.address, timeoutMs: Math.round(timeoutMs), sent: true },
                },
              ),
            );
          },
          Math.max(0, timeoutMs),
        );
      }
      this.#pending.set(id, pending);
      writer.write(frame);
      this.#startProbe();
    });
  }

  /** While calls are pending, checks that the provider still answers (module comment). */
  #startProbe(): void {
    const probeMs = this.#opts.probeMs;
    if (this.#probe !== undefined || probeMs <= 0) return;
    this.#probe = setInterval(
      () => {
        if (this.#pending.size === 0) {
          clearInterval(this.#probe);
          this.#probe = undefined;
          return;
        }
        const now = Date.now();
        if (now - this.#lastReceived < probeMs) return;
        if (this.#probeSentAt === 0) {
          this.#probeSentAt = now;
          this.#write({ type: 4, id: 0 });
        } else if (now - this.#probeSentAt >= probeMs && !this.#unresponsive) {
          this.#unresponsive = true;
          this.#logger?.warn(
            {
              provider: this.address,
              silentMs: now - this.#lastReceived,
              pending: this.#pending.size,
            },
            'provider does not answer; not picked until it does',
          );
        }
      },
      Math.max(10, Math.floor(probeMs / 2)),
    );
    this.#probe.unref();
  }

  /** Closes the connection for good; pending calls fail with PEAK_RPC_CONNECTION_LOST. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#heartbeat);
    clearInterval(this.#probe);
    this.#writer?.flush();
    this.#socket?.end();
    const socket = this.#socket;
    if (socket !== undefined) setTimeout(() => socket.destroy(), 1000).unref();
  }
}
