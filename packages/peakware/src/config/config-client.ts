/**
 * The config center client. One Server-Sent-Events stream per app
 * (`GET /api/v1/config/watch`): every entry the instance should see first (released, or
 * gray when the instance is in the gray audience by id or tag), then every change, pushed
 * by whichever control-plane node it is connected to (nodes agree through PostgreSQL
 * LISTEN/NOTIFY), the same channel the registry uses.
 *
 * Outages: when no node answers, the client keeps its last entries and retries with
 * backoff across all given servers; every received entry is also written to a local
 * snapshot file, read back at construction, so an instance restarted while the control
 * plane is down starts with its last config.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import {
  ControlPlaneClient,
  type EventSubscription,
  type TokenSource,
} from '../core/control-plane-client.js';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { SseEvent } from '../core/sse-reader.js';
import { type ConfigEntry, entryName } from './config-entry.js';
import type { ConfigSource } from './config-source.js';

/** Options of {@link ConfigClient}. */
export interface ConfigClientOptions {
  /** The control-plane node URL, or several (failover in order). */
  servers: string | readonly string[];
  /** A bearer token (or a function returning one) for the control plane. Default: none. */
  token?: TokenSource;
  /** The app (namespace) whose items this instance reads. */
  app: string;
  /** This instance's id (gray releases may target it). */
  instanceId?: string;
  /** This instance's tags (gray releases may target them), e.g. `canary`. */
  tags?: string[];
  /** Where to keep the last known entries across restarts; absent: no file. */
  snapshotFile?: string;
  /** First reconnect delay, ms; doubles up to 5 s. Default 200. */
  reconnectMs?: number;
  logger?: Logger;
}

/**
 * Called with the new entry of a watched item, and the one it replaces; when the item was
 * removed, with its last entry marked `removed: true`.
 */
export type ConfigListener = (entry: ConfigEntry, previous: ConfigEntry | undefined) => void;

/** Where the entries in force came from. */
export type ConfigOrigin = 'server' | 'snapshot' | 'none';

/** Reads `group/key` or `key` (group `default`). */
export function itemName(name: string): string {
  return name.includes('/') ? name : entryName('default', name);
}

/** Reads an app's config items and keeps them current. */
export class ConfigClient implements ConfigSource {
  readonly #http: ControlPlaneClient;
  readonly #app: string;
  readonly #instanceId: string | undefined;
  readonly #tags: string[];
  readonly #snapshotFile: string | undefined;
  readonly #reconnectMs: number;
  readonly #logger: Logger;
  readonly #entries = new Map<string, ConfigEntry>();
  readonly #listeners = new Map<string, Set<ConfigListener>>();
  readonly #anyListeners = new Set<ConfigListener>();
  readonly #readyWaiters = new Set<() => void>();
  #origin: ConfigOrigin = 'none';
  #subscription: EventSubscription | undefined;
  #started = false;
  #closed = false;
  #saveScheduled = false;

  constructor(options: ConfigClientOptions) {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(options.app))
      throw new PeakError(
        ErrorCodes.USAGE,
        `ConfigClient: app '${options.app}' is not valid; use 1-128 of [A-Za-z0-9_.-]`,
      );
    this.#http = new ControlPlaneClient({
      servers: options.servers,
      ...(options.token === undefined ? {} : { token: options.token }),
    });
    this.#app = options.app;
    this.#instanceId = options.instanceId;
    this.#tags = [...(options.tags ?? [])];
    this.#snapshotFile = options.snapshotFile;
    this.#reconnectMs = options.reconnectMs ?? 200;
    this.#logger = options.logger ?? silentLogger();
    if (this.#snapshotFile !== undefined) this.#loadSnapshot(this.#snapshotFile);
  }

  #loadSnapshot(file: string): void {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as {
        app?: string;
        entries?: ConfigEntry[];
      };
      if (data.app !== this.#app || !Array.isArray(data.entries)) return;
      for (const e of data.entries) this.#entries.set(entryName(e.group, e.key), e);
      this.#origin = 'snapshot';
    } catch {
      // No snapshot yet (or unreadable): start empty.
    }
  }

  /**
   * Opens the watch stream. Resolves once the server's entries arrived, or after
   * `timeoutMs` with whatever is known (the snapshot file's entries, or none): the instance
   * starts either way and the stream keeps retrying. Returns where the entries came from.
   */
  async start(timeoutMs = 3000): Promise<ConfigOrigin> {
    if (!this.#started) {
      this.#started = true;
      this.#watch();
    }
    if (this.#origin === 'server') return 'server';
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#readyWaiters.add(done);
    });
    return this.#origin;
  }

  /** Where the entries in force came from: the server, the snapshot file, or nowhere yet. */
  get origin(): ConfigOrigin {
    return this.#origin;
  }

  /** The entry of `group/key` (or `key` in group `default`), if known. */
  entry(name: string): ConfigEntry | undefined {
    return this.#entries.get(itemName(name));
  }

  /** Every entry known, by `group/key`. */
  entries(): ConfigEntry[] {
    return [...this.#entries.values()];
  }

  /** The raw value (JSON text for JSON items), or `fallback`. */
  getString(name: string, fallback?: string): string | undefined {
    return this.entry(name)?.value ?? fallback;
  }

  /**
   * The parsed JSON value, checked with `schema` when given; `fallback` when the item is
   * unknown. Throws PEAK_CONFIG_INVALID when the value does not parse or fit the schema.
   */
  getJson<T = unknown>(name: string, fallback?: T, schema?: z.ZodType<T>): T | undefined {
    const e = this.entry(name);
    if (e === undefined) return fallback;
    let parsed: unknown;
    try {
      parsed = JSON.parse(e.value);
    } catch (err) {
      throw new PeakError(
        ErrorCodes.CONFIG_INVALID,
        `config ${itemName(name)} is not JSON: ${errorMessage(err)}`,
      );
    }
    if (schema === undefined) return parsed as T;
    const r = schema.safeParse(parsed);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new PeakError(
        ErrorCodes.CONFIG_INVALID,
        `config ${itemName(name)} does not fit the schema: $.${issue?.path.map(String).join('.') ?? ''} ${issue?.message ?? ''}`,
      );
    }
    return r.data;
  }

  /** A number (JSON number or numeric text), or `fallback`. */
  getNumber(name: string, fallback?: number): number | undefined {
    const e = this.entry(name);
    if (e === undefined) return fallback;
    const n = Number(e.value);
    return Number.isFinite(n) ? n : fallback;
  }

  /** A boolean (`true`/`false`, JSON or text), or `fallback`. */
  getBoolean(name: string, fallback?: boolean): boolean | undefined {
    const v = this.entry(name)?.value.trim();
    if (v === 'true') return true;
    if (v === 'false') return false;
    return fallback;
  }

  /**
   * Calls `listener` on every change of `group/key` (or `key`), or of every item with `*`.
   * Returns the unsubscribe function.
   */
  watch(name: string, listener: ConfigListener): () => void {
    if (name === '*') {
      this.#anyListeners.add(listener);
      return () => this.#anyListeners.delete(listener);
    }
    const n = itemName(name);
    let set = this.#listeners.get(n);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(n, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  #apply(entry: ConfigEntry): void {
    const name = entryName(entry.group, entry.key);
    const prev = this.#entries.get(name);
    if (
      prev !== undefined &&
      prev.version === entry.version &&
      prev.gray === entry.gray &&
      prev.value === entry.value
    )
      return;
    this.#entries.set(name, entry);
    for (const fn of [...(this.#listeners.get(name) ?? []), ...this.#anyListeners]) {
      try {
        fn(entry, prev);
      } catch (err) {
        this.#logger.warn({ err: errorMessage(err), item: name }, 'config listener threw');
      }
    }
  }

  /** Forgets an item that was removed; its listeners get its last entry with `removed`. */
  #remove(name: string): void {
    const prev = this.#entries.get(name);
    if (prev === undefined) return;
    this.#entries.delete(name);
    const gone: ConfigEntry = { ...prev, removed: true };
    for (const fn of [...(this.#listeners.get(name) ?? []), ...this.#anyListeners]) {
      try {
        fn(gone, prev);
      } catch (err) {
        this.#logger.warn({ err: errorMessage(err), item: name }, 'config listener threw');
      }
    }
  }

  #scheduleSave(): void {
    if (this.#saveScheduled || this.#snapshotFile === undefined) return;
    this.#saveScheduled = true;
    const file = this.#snapshotFile;
    setTimeout(() => {
      this.#saveScheduled = false;
      this.saveSnapshot(file);
    }, 20).unref();
  }

  /** Writes the entries in force to `file` now (atomically: temp file, then rename). */
  saveSnapshot(file = this.#snapshotFile): void {
    if (file === undefined) return;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(
        tmp,
        JSON.stringify({
          app: this.#app,
          savedAt: new Date().toISOString(),
          entries: this.entries(),
        }),
      );
      renameSync(tmp, file);
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err), file },
        'could not write the config snapshot file',
      );
    }
  }

  /** Holds the watch stream open, reconnecting across the servers with backoff. */
  #watch(): void {
    if (this.#closed) return;
    this.#subscription = this.#http.subscribe('/api/v1/config/watch', (e) => this.#onEvent(e), {
      query: () => ({ app: this.#app, instance: this.#instanceId, tag: this.#tags }),
      backoff: { initialMs: this.#reconnectMs, maxMs: 5000 },
      onError: (err, server) =>
        this.#logger.debug(
          { err: errorMessage(err), server, app: this.#app },
          'config watch stream failed',
        ),
    });
  }

  #onEvent(e: SseEvent): void {
    if (e.event === 'snapshot') {
      const parsed = JSON.parse(e.data) as { entries: ConfigEntry[] };
      // Items known (from the snapshot file, or before a reconnect) but gone now were removed.
      const present = new Set(parsed.entries.map((x) => entryName(x.group, x.key)));
      for (const name of [...this.#entries.keys()]) if (!present.has(name)) this.#remove(name);
      for (const entry of parsed.entries) this.#apply(entry);
      this.#origin = 'server';
      this.#scheduleSave();
      for (const w of this.#readyWaiters) w();
      this.#readyWaiters.clear();
    } else if (e.event === 'entry') {
      this.#apply(JSON.parse(e.data) as ConfigEntry);
      this.#scheduleSave();
    } else if (e.event === 'removed') {
      const gone = JSON.parse(e.data) as { group: string; key: string };
      this.#remove(entryName(gone.group, gone.key));
      this.#scheduleSave();
    }
  }

  /** Closes the stream and stops retrying; the snapshot file keeps the last entries. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#subscription?.close();
    if (this.#saveScheduled) this.saveSnapshot();
    for (const w of this.#readyWaiters) w();
    this.#readyWaiters.clear();
  }
}
