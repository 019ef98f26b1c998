/**
 * The push side of the gateway's state on one control-plane node: a dedicated PostgreSQL
 * connection LISTENs on `peak_gateway`; on a notification the hub reads every change after
 * the last rev it sent (once, for all its watchers) and writes them to each `peak gateway`
 * process's Server-Sent-Events stream. A gateway connects with the rev it has (`since`):
 * it gets only what changed after it (a whole snapshot when it has nothing, or was away
 * longer than tombstones are kept), so a reconnect never rebuilds its route table.
 */
import type { ServerResponse } from 'node:http';
import type pg from 'pg';
import type { Logger } from '../../core/logger.js';
import { PgListener } from '../../server/pg-listener.js';
import type { GatewayChange } from '../gateway-objects.js';
import { GATEWAY_CHANNEL, readChanges, readSnapshot } from './gateway-store.js';

const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

interface Watcher {
  res: ServerResponse;
  /** The newest rev this stream has been sent. */
  rev: number;
  /** Changes broadcast while its first answer was being read (sent after it). */
  pending: GatewayChange[] | undefined;
}

/** Fans gateway changes out to the gateways connected to this node. */
export class GatewayHub {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #watchers = new Set<Watcher>();
  readonly #listener: PgListener;
  #rev = 0;
  #reading: Promise<void> | undefined;
  #again = false;
  #keepalive: NodeJS.Timeout | undefined;

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
    this.#listener = new PgListener(pool, GATEWAY_CHANNEL, logger, {
      onNotify: () => this.#pull(),
      onReconnect: () => this.#pull(),
    });
  }

  /** Starts listening. */
  async start(): Promise<void> {
    await this.#listener.start();
    const { rows } = await this.#pool.query<{ rev: string | null }>(
      'SELECT max(rev) AS rev FROM peak.gateway_objects',
    );
    this.#rev = Number(rows[0]?.rev ?? 0);
    this.#keepalive = setInterval(() => {
      for (const w of this.#watchers) w.res.write(': keepalive\n\n');
    }, 15_000);
    this.#keepalive.unref();
  }

  #pull(): void {
    if (this.#reading !== undefined) {
      this.#again = true;
      return;
    }
    this.#reading = this.#read()
      .catch((err) => this.#logger.warn({ err }, 'gateway: reading changes failed'))
      .finally(() => {
        this.#reading = undefined;
        if (this.#again) {
          this.#again = false;
          this.#pull();
        }
      });
  }

  async #read(): Promise<void> {
    const changes = await readChanges(this.#pool, this.#rev);
    if (changes === undefined || changes.length === 0) return;
    this.#rev = changes[changes.length - 1]!.rev;
    for (const w of this.#watchers) this.#send(w, changes);
  }

  #send(w: Watcher, changes: readonly GatewayChange[]): void {
    if (w.pending !== undefined) {
      w.pending.push(...changes);
      return;
    }
    const fresh = changes.filter((c) => c.rev > w.rev);
    if (fresh.length === 0) return;
    if (w.res.writableLength > MAX_BUFFERED_BYTES) {
      this.#logger.warn('gateway watcher not reading; stream closed');
      w.res.destroy();
      return;
    }
    w.rev = fresh[fresh.length - 1]!.rev;
    w.res.write(`event: changes\ndata: ${JSON.stringify({ rev: w.rev, changes: fresh })}\n\n`);
  }

  /** Adds a stream: what changed after `since` (or a snapshot), then every change. */
  async watch(res: ServerResponse, since: number): Promise<void> {
    const watcher: Watcher = { res, rev: 0, pending: [] };
    this.#watchers.add(watcher);
    res.on('close', () => this.#watchers.delete(watcher));
    const changes = since > 0 ? await readChanges(this.#pool, since) : undefined;
    if (changes !== undefined) {
      watcher.rev = changes.length === 0 ? since : changes[changes.length - 1]!.rev;
      res.write(`event: changes\ndata: ${JSON.stringify({ rev: watcher.rev, changes })}\n\n`);
    } else {
      const snapshot = await readSnapshot(this.#pool);
      watcher.rev = snapshot.rev;
      res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    }
    const pending = watcher.pending ?? [];
    watcher.pending = undefined;
    this.#send(watcher, pending);
  }

  /** Ends every stream (gateways reconnect elsewhere) and stops listening. */
  async stop(): Promise<void> {
    clearInterval(this.#keepalive);
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
    await this.#listener.stop();
  }
}
