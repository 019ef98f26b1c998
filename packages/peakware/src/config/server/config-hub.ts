/**
 * The push side of the config center on one control-plane node, built like the registry
 * hub: a dedicated PostgreSQL connection LISTENs on `peak_config`; when an item changes
 * (on any node), this node reads it once and sends each watcher of that app the entry it
 * should see (released or gray) over Server-Sent Events, or `event: removed` when the item
 * is gone. If the LISTEN connection breaks,
 * the hub reconnects and re-sends every watched app (a notification may have been missed).
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type pg from 'pg';
import type { Logger } from '../../core/logger.js';
import { PgListener } from '../../server/pg-listener.js';
import { type ConfigEntry, effectiveEntry, entryName } from '../config-entry.js';
import { CONFIG_CHANNEL, type NotifiedState, readItems } from './config-store.js';

const NO_TAGS: ReadonlySet<string> = new Set();
/** The signature of an item a watcher was told is gone. */
const REMOVED = 'removed';

/** Bytes queued on one stream beyond which its client counts as stuck, 8 MiB. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/**
 * What identifies an entry's content without the value (a 256 KiB value repeated per
 * watcher would be copied a thousand times): a released value by its version, a gray one
 * by its base version and a digest of its value (computed once per change, not per watcher).
 */
function signatures(
  gray: { value: string } | null,
  version: number,
): { released: string; gray: string } {
  return {
    released: `${version}|r`,
    gray:
      gray === null ? '' : `${version}|g|${createHash('sha1').update(gray.value).digest('base64')}`,
  };
}

/** One SSE stream to one SDK client, watching one app. */
interface Watcher {
  res: ServerResponse;
  app: string;
  instanceId: string | undefined;
  tags: Set<string>;
  /** Per item: sequence number of the newest read sent, and what was sent. */
  sent: Map<string, { seq: number; sig: string }>;
  /** False until its snapshot is written: a change before that is only noted in `missed`. */
  ready: boolean;
  /** Items that changed while the snapshot was being read: read and sent again after it. */
  missed: Set<string>;
}

/** Fans config changes out to SSE watchers on this node. */
export class ConfigHub {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #byApp = new Map<string, Set<Watcher>>();
  readonly #dirty = new Set<string>();
  #seq = 0;
  readonly #listener: PgListener;
  #keepalive: NodeJS.Timeout | undefined;
  #flushScheduled = false;

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
    this.#listener = new PgListener(pool, CONFIG_CHANNEL, logger, {
      onNotify: (payload) => {
        if (payload.startsWith('{')) this.#pushState(payload);
        else this.#markDirty(payload);
      },
      onReconnect: () => {
        for (const app of this.#byApp.keys()) this.#markDirty(app);
      },
    });
  }

  /** Starts listening for changes. */
  async start(): Promise<void> {
    await this.#listener.start();
    this.#keepalive = setInterval(() => {
      for (const set of this.#byApp.values()) for (const w of set) w.res.write(': keepalive\n\n');
    }, 15_000);
    this.#keepalive.unref();
  }

  /** `app/group/key` (one item) or `app` (everything of the app). */
  #markDirty(target: string): void {
    this.#dirty.add(target);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const targets = [...this.#dirty];
      this.#dirty.clear();
      for (const t of targets)
        this.#push(t).catch((err) => this.#logger.warn({ err, target: t }, 'config push failed'));
    });
  }

  /** A release whose state came in the NOTIFY payload: no read back (no gray runs then). */
  #pushState(payload: string): void {
    let state: NotifiedState;
    try {
      state = JSON.parse(payload) as NotifiedState;
    } catch (err) {
      this.#logger.warn({ err }, 'config: unreadable NOTIFY payload ignored');
      return;
    }
    const watchers = this.#byApp.get(state.app);
    if (watchers === undefined || watchers.size === 0) return;
    const entry: ConfigEntry = {
      group: state.group,
      key: state.key,
      version: state.version,
      format: state.format,
      value: state.value,
      gray: false,
    };
    const sig = `${entry.version}|r`;
    const event = `event: entry\ndata: ${JSON.stringify(entry)}\n\n`;
    const seq = ++this.#seq;
    const name = entryName(state.group, state.key);
    for (const w of watchers) this.#send(w, name, seq, sig, event);
  }

  async #push(target: string): Promise<void> {
    const [app, group, key] = target.split('/');
    if (app === undefined) return;
    const watchers = this.#byApp.get(app);
    if (watchers === undefined || watchers.size === 0) return;
    const seq = ++this.#seq;
    const only = group !== undefined && key !== undefined ? { app, group, key } : undefined;
    const rows = await readItems(this.#pool, app, only);
    if (only !== undefined && rows.length === 0) {
      this.#pushRemoved(watchers, only.group, only.key, seq);
      return;
    }
    for (const row of rows) {
      const name = entryName(row.item.group, row.item.key);
      if (row.gray === null) {
        // No gray release: every watcher gets the same bytes, serialised once.
        const entry = effectiveEntry(row, undefined, NO_TAGS);
        const sig = `${entry.version}|r`;
        const event = `event: entry\ndata: ${JSON.stringify(entry)}\n\n`;
        for (const w of watchers) this.#send(w, name, seq, sig, event);
        continue;
      }
      const sigs = signatures(row.gray, row.item.version);
      // One serialisation per distinct entry, shared by every watcher that sees it.
      const events = new Map<string, string>();
      for (const w of watchers) {
        const entry = effectiveEntry(row, w.instanceId, w.tags);
        const sig = entry.gray ? sigs.gray : sigs.released;
        let event = events.get(sig);
        if (event === undefined) {
          event = `event: entry\ndata: ${JSON.stringify(entry)}\n\n`;
          events.set(sig, event);
        }
        this.#send(w, name, seq, sig, event);
      }
    }
  }

  /** An item that is gone (`peak config rm`): watchers that were sent it are told. */
  #pushRemoved(watchers: Set<Watcher>, group: string, key: string, seq: number): void {
    const name = entryName(group, key);
    const event = `event: removed\ndata: ${JSON.stringify({ group, key })}\n\n`;
    // A watcher still reading its snapshot may have read the item before it went: noted.
    for (const w of watchers)
      if (!w.ready || w.sent.has(name)) this.#send(w, name, seq, REMOVED, event);
  }

  #send(w: Watcher, name: string, seq: number, sig: string, event: string): void {
    if (!w.ready) {
      // Its snapshot is still being read: an entry written now would reach the client before
      // the snapshot, which replaces everything the client holds (and, by leaving the item
      // out as already sent, would make the client drop it). Read it again after.
      w.missed.add(name);
      return;
    }
    const last = w.sent.get(name);
    if (last !== undefined && (last.seq >= seq || last.sig === sig)) return;
    w.sent.set(name, { seq, sig });
    // A client that stopped reading: drop it rather than buffer without bound; it
    // reconnects and starts again from a snapshot.
    if (w.res.writableLength > MAX_BUFFERED_BYTES) {
      this.#logger.warn(
        { app: w.app, instanceId: w.instanceId },
        'config watcher not reading; stream closed',
      );
      w.res.destroy();
      return;
    }
    w.res.write(event);
  }

  /** Adds a watcher: sends every entry of the app it should see, then every change. */
  async watch(
    res: ServerResponse,
    app: string,
    instanceId: string | undefined,
    tags: string[],
  ): Promise<void> {
    const watcher: Watcher = {
      res,
      app,
      instanceId,
      tags: new Set(tags),
      sent: new Map(),
      ready: false,
      missed: new Set(),
    };
    let set = this.#byApp.get(app);
    if (set === undefined) {
      set = new Set();
      this.#byApp.set(app, set);
    }
    set.add(watcher);
    res.on('close', () => {
      const s = this.#byApp.get(app);
      s?.delete(watcher);
      if (s?.size === 0) this.#byApp.delete(app);
    });
    const seq = ++this.#seq;
    const rows = await readItems(this.#pool, app);
    const entries: ConfigEntry[] = [];
    for (const row of rows) {
      const entry = effectiveEntry(row, instanceId, watcher.tags);
      const name = entryName(entry.group, entry.key);
      const sigs = signatures(row.gray, row.item.version);
      watcher.sent.set(name, { seq, sig: entry.gray ? sigs.gray : sigs.released });
      entries.push(entry);
    }
    res.write(`event: snapshot\ndata: ${JSON.stringify({ app, entries })}\n\n`);
    watcher.ready = true;
    // What changed during the read is read again now (its NOTIFY came, so it committed): an
    // entry the snapshot already has is not sent twice (same signature), a newer one is, and
    // an item removed meanwhile is told as removed.
    for (const name of watcher.missed) this.#markDirty(`${app}/${name}`);
    watcher.missed.clear();
  }

  /** Number of open watch streams on this node. */
  get watchers(): number {
    let n = 0;
    for (const s of this.#byApp.values()) n += s.size;
    return n;
  }

  /** Ends every stream (clients reconnect elsewhere) and stops listening. */
  async stop(): Promise<void> {
    clearInterval(this.#keepalive);
    for (const s of this.#byApp.values()) for (const w of s) w.res.end();
    this.#byApp.clear();
    await this.#listener.stop();
  }
}
