/**
 * Hot-key detection across instances (JD hotkey's idea, aggregated in Redis rather than a
 * separate worker fleet): each instance counts its accesses per window (bounded: at most
 * `maxTracked` distinct keys a window), and at the window's end adds its `top` keys' counts
 * to one sorted set per window in Redis. A moment later every instance reads the window's
 * keys at or above `threshold` and serves them from L1 until they stay below it for
 * `coolWindows` windows. No leader is needed: every instance reads the same sorted set.
 * A key that turns hot is known everywhere about `windowMs + windowMs / 5` later.
 */
import type { RedisClient } from './redis-connection.js';

/** Options of {@link HotKeys}. */
export interface HotKeysOptions {
  /** The cache's name (key namespace). */
  name: string;
  /** The Redis client to report and read on. */
  redis: RedisClient;
  /** Accesses per window, summed over all instances, that make a key hot; default 1 000. */
  threshold?: number;
  /** Window length, ms; default 500. */
  windowMs?: number;
  /** Keys each instance reports per window; default 20. */
  top?: number;
  /** Windows below the threshold before a hot key cools; default 4. */
  coolWindows?: number;
  /** Distinct keys counted per window and instance; default 10 000. */
  maxTracked?: number;
  /** The clock, epoch ms; default `Date.now`. */
  now?: () => number;
  /** Called with the hot set whenever it changes. */
  onChange?: (hot: string[]) => void;
}

/** Redis key of a window's aggregate. */
export function hotWindowKey(name: string, window: number): string {
  return `peak:cache:${name}:hot:${window}`;
}

/** One instance's side of hot-key detection. */
export class HotKeys {
  readonly #o: Required<Omit<HotKeysOptions, 'onChange'>> & Pick<HotKeysOptions, 'onChange'>;
  #counts = new Map<string, number>();
  readonly #hot = new Map<string, number>(); // key → last window it was hot in
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: HotKeysOptions) {
    this.#o = {
      threshold: 1000,
      windowMs: 500,
      top: 20,
      coolWindows: 4,
      maxTracked: 10_000,
      now: Date.now,
      ...options,
    };
    this.#schedule();
  }

  /** Counts one access. */
  record(key: string): void {
    const c = this.#counts.get(key);
    if (c !== undefined) this.#counts.set(key, c + 1);
    else if (this.#counts.size < this.#o.maxTracked) this.#counts.set(key, 1);
  }

  /** True while the key is hot. */
  isHot(key: string): boolean {
    return this.#hot.size > 0 && this.#hot.has(key);
  }

  /** The hot keys now. */
  current(): string[] {
    return [...this.#hot.keys()];
  }

  #schedule(): void {
    if (this.#closed) return;
    const w = this.#o.windowMs;
    const now = this.#o.now();
    const next = (Math.floor(now / w) + 1) * w;
    this.#timer = setTimeout(() => this.#flush(Math.floor(now / w)), next - now);
    this.#timer.unref();
  }

  #flush(window: number): void {
    const counts = this.#counts;
    this.#counts = new Map();
    this.#schedule();
    const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, this.#o.top);
    const key = hotWindowKey(this.#o.name, window);
    const redis = this.#o.redis;
    const report =
      top.length === 0
        ? Promise.resolve()
        : (() => {
            const pipe = redis.pipeline();
            for (const [k, n] of top) pipe.zincrby(key, n, k);
            pipe.pexpire(key, this.#o.windowMs * 20);
            return pipe.exec().then(() => undefined);
          })();
    // Read once every instance has had time to report the same window.
    const readTimer = setTimeout(() => {
      report
        .catch(() => undefined)
        .then(() => redis.zrangebyscore(key, this.#o.threshold, '+inf'))
        .then(
          (keys) => this.#update(window, keys),
          () => this.#update(window, []),
        );
    }, this.#o.windowMs / 5);
    readTimer.unref();
  }

  #update(window: number, keys: string[]): void {
    if (this.#closed) return;
    let changed = false;
    for (const k of keys) {
      if (!this.#hot.has(k)) changed = true;
      this.#hot.set(k, window);
    }
    for (const [k, last] of this.#hot) {
      if (window - last >= this.#o.coolWindows) {
        this.#hot.delete(k);
        changed = true;
      }
    }
    if (changed) this.#o.onChange?.(this.current());
  }

  /** Stops reporting. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}

/** One key in {@link readHotKeys}'s answer. */
export interface HotKeyRow {
  key: string;
  /** Accesses summed over all instances in the last complete window. */
  last: number;
  /** The most in any of the windows read. */
  max: number;
  /** At or above the threshold in at least one of them: what the instances serve from L1. */
  hot: boolean;
}

/** Options of {@link readHotKeys}; defaults are the instances' own. */
export interface ReadHotKeysOptions {
  /** The cache's name. */
  name: string;
  /** Accesses per window that make a key hot; default 1 000. */
  threshold?: number;
  /** The instances' window length, ms; default 500. */
  windowMs?: number;
  /** Complete windows to read, newest first; default 4 (the instances' cooling period). */
  windows?: number;
  /** Keys read per window (the most accessed); default 20. */
  top?: number;
  /** The clock, epoch ms; default `Date.now()`. */
  now?: number;
}

/**
 * The most accessed keys of a cache over its last complete windows, from the sorted sets
 * every instance reports to (what `peak cache hot` prints): no instance is asked, so it
 * works from anywhere that reaches the Redis, with any number of instances.
 */
export async function readHotKeys(
  redis: RedisClient,
  options: ReadHotKeysOptions,
): Promise<{ windows: number[]; keys: HotKeyRow[] }> {
  const threshold = options.threshold ?? 1000;
  const windowMs = options.windowMs ?? 500;
  const count = options.windows ?? 4;
  const top = options.top ?? 20;
  const current = Math.floor((options.now ?? Date.now()) / windowMs);
  const windows = Array.from({ length: count }, (_, i) => current - 1 - i);
  // One command a window (their keys may sit on different nodes of a cluster).
  const replies = await Promise.all(
    windows.map((w) => redis.zrevrange(hotWindowKey(options.name, w), 0, top - 1, 'WITHSCORES')),
  );
  const rows = new Map<string, HotKeyRow>();
  replies.forEach((flat, i) => {
    for (let j = 0; j + 1 < flat.length; j += 2) {
      const key = flat[j]!;
      const n = Number(flat[j + 1]);
      let row = rows.get(key);
      if (row === undefined) {
        row = { key, last: 0, max: 0, hot: false };
        rows.set(key, row);
      }
      if (i === 0) row.last = n;
      row.max = Math.max(row.max, n);
      row.hot ||= n >= threshold;
    }
  });
  const keys = [...rows.values()].sort((a, b) => b.max - a.max || a.key.localeCompare(b.key));
  return { windows, keys: keys.slice(0, top) };
}
