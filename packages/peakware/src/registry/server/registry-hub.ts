/**
 * The push side of the registry on one control-plane node: a dedicated PostgreSQL
 * connection LISTENs on `peak_registry`; when a key changes (on any node), this node
 * re-reads that key and pushes the full list to its watchers over Server-Sent Events. A
 * sweeper removes instances whose lease ran out. If the LISTEN connection breaks, the hub
 * reconnects and re-sends every watched key (a notification may have been missed).
 */
import type { ServerResponse } from 'node:http';
import type pg from 'pg';
import type { Logger } from '../../core/logger.js';
import { PgListener } from '../../server/pg-listener.js';
import { listInstances, REGISTRY_CHANNEL, sweepExpired } from './registry-store.js';

/** One SSE stream to one SDK client, watching some keys. */
interface Watcher {
  res: ServerResponse;
  keys: Set<string>;
  /** Per key, the sequence number of the newest list sent (older answers are dropped). */
  sent: Map<string, number>;
}

/** Fans registry changes out to SSE watchers on this node. */
export class RegistryHub {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #watchers = new Set<Watcher>();
  readonly #dirty = new Set<string>();
  /**
   * Queries for one key may finish out of order (several pool connections); a query that
   * started later saw a newer state, so each carries a sequence number and a watcher never
   * gets a list older than one it already has.
   */
  #seq = 0;
  readonly #listener: PgListener;
  #sweeper: NodeJS.Timeout | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  #flushScheduled = false;

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
    this.#listener = new PgListener(pool, REGISTRY_CHANNEL, logger, {
      onNotify: (payload) => {
        this.#markDirty(payload);
      },
      onReconnect: () => {
        for (const w of this.#watchers) for (const k of w.keys) this.#markDirty(k);
      },
    });
  }

  /** Starts listening and sweeping. */
  async start(sweepMs: number): Promise<void> {
    await this.#listener.start();
    this.#sweeper = setInterval(() => {
      sweepExpired(this.#pool).catch((err) => this.#logger.warn({ err }, 'registry sweep failed'));
    }, sweepMs);
    this.#sweeper.unref();
    this.#keepalive = setInterval(() => {
      for (const w of this.#watchers) w.res.write(': keepalive\n\n');
    }, 15_000);
    this.#keepalive.unref();
  }

  #markDirty(key: string): void {
    this.#dirty.add(key);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const keys = [...this.#dirty];
      this.#dirty.clear();
      for (const key of keys)
        this.#push(key).catch((err) => this.#logger.warn({ err, key }, 'registry push failed'));
    });
  }

  async #push(key: string): Promise<void> {
    if (![...this.#watchers].some((w) => w.keys.has(key))) return;
    const seq = ++this.#seq;
    const instances = await listInstances(this.#pool, key);
    const event = `event: snapshot\ndata: ${JSON.stringify({ key, instances })}\n\n`;
    for (const w of this.#watchers) {
      if (w.keys.has(key)) this.#send(w, key, seq, event);
    }
  }

  #send(w: Watcher, key: string, seq: number, event: string): void {
    if ((w.sent.get(key) ?? 0) >= seq) return;
    w.sent.set(key, seq);
    w.res.write(event);
  }

  /** Adds a watcher: sends the current list of each key, then every change. */
  async watch(res: ServerResponse, keys: string[]): Promise<void> {
    const watcher: Watcher = { res, keys: new Set(keys), sent: new Map() };
    this.#watchers.add(watcher);
    res.on('close', () => this.#watchers.delete(watcher));
    for (const key of keys) {
      const seq = ++this.#seq;
      const instances = await listInstances(this.#pool, key);
      this.#send(
        watcher,
        key,
        seq,
        `event: snapshot\ndata: ${JSON.stringify({ key, instances })}\n\n`,
      );
    }
  }

  /** Number of open watch streams on this node. */
  get watchers(): number {
    return this.#watchers.size;
  }

  /** Ends every stream (clients reconnect elsewhere) and stops listening. */
  async stop(): Promise<void> {
    clearInterval(this.#sweeper);
    clearInterval(this.#keepalive);
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
    await this.#listener.stop();
  }
}
