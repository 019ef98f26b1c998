/**
 * One dedicated PostgreSQL connection LISTENing on a channel, for the control plane's push
 * hubs (registry, config). If the connection breaks it reconnects every second and then
 * calls `onReconnect` (a notification may have been missed while it was down, so the hub
 * re-sends what its watchers follow). Errors from a client already let go of (PostgreSQL
 * shutting down after `stop()`) are ignored: releasing it twice would crash the process.
 */
import type pg from 'pg';
import type { Logger } from '../core/logger.js';

/** What a {@link PgListener} calls. */
export interface PgListenerHandlers {
  /** A notification's payload on the channel. */
  onNotify(payload: string): void;
  /** The connection was re-established after a break. */
  onReconnect(): void;
}

/** LISTEN on `channel` through a dedicated pool client, reconnecting when it breaks. */
export class PgListener {
  readonly #pool: pg.Pool;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #handlers: PgListenerHandlers;
  #client: pg.PoolClient | undefined;
  #stopped = false;

  constructor(pool: pg.Pool, channel: string, logger: Logger, handlers: PgListenerHandlers) {
    this.#pool = pool;
    this.#channel = channel;
    this.#logger = logger;
    this.#handlers = handlers;
  }

  /** Connects and starts listening. */
  async start(): Promise<void> {
    const client = await this.#pool.connect();
    this.#client = client;
    client.on('notification', (msg) => {
      if (msg.channel === this.#channel && msg.payload !== undefined) {
        this.#handlers.onNotify(msg.payload);
      }
    });
    client.on('error', (err) => {
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#logger.warn({ err, channel: this.#channel }, 'LISTEN connection failed; reconnecting');
      client.release(err);
      this.#retry();
    });
    await client.query(`LISTEN ${this.#channel}`);
  }

  #retry(): void {
    if (this.#stopped) return;
    setTimeout(() => {
      if (this.#stopped) return;
      this.start()
        .then(() => this.#handlers.onReconnect())
        .catch((err) => {
          this.#logger.warn({ err, channel: this.#channel }, 'LISTEN reconnect failed');
          this.#retry();
        });
    }, 1000).unref();
  }

  /** Stops listening and gives the connection back. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) {
      client.on('error', () => undefined);
      await client.query(`UNLISTEN ${this.#channel}`).catch(() => undefined);
      client.release();
    }
  }
}
