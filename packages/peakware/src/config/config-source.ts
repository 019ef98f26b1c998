/**
 * The `ConfigSource` seam: what code that follows config needs from the config center, so
 * it can be driven by the real client ({@link ConfigClient}, pushed from `peak server`) or,
 * in tests and single-process tools, by {@link InMemoryConfigSource}.
 */
import { type ConfigEntry, entryName } from './config-entry.js';

/** Called with the new entry of a watched item, and the one it replaces. */
export type ConfigSourceListener = (entry: ConfigEntry, previous: ConfigEntry | undefined) => void;

/** The items in force for one instance, and their changes. */
export interface ConfigSource {
  /** The entry of `group/key` (or `key`, group `default`) in force, or undefined. */
  entry(name: string): ConfigEntry | undefined;
  /** Every entry in force. */
  entries(): ConfigEntry[];
  /** Calls `listener` on every change of `name` (or of every item with `*`); returns the unsubscribe. */
  watch(name: string, listener: ConfigSourceListener): () => void;
}

/** `group/key` for a name given as `group/key` or `key`. */
function fullName(name: string): string {
  return name.includes('/') ? name : entryName('default', name);
}

/** A {@link ConfigSource} held in memory: `set` publishes a new version to its watchers. */
export class InMemoryConfigSource implements ConfigSource {
  readonly #entries = new Map<string, ConfigEntry>();
  readonly #listeners = new Map<string, Set<ConfigSourceListener>>();

  entry(name: string): ConfigEntry | undefined {
    return this.#entries.get(fullName(name));
  }

  entries(): ConfigEntry[] {
    return [...this.#entries.values()];
  }

  watch(name: string, listener: ConfigSourceListener): () => void {
    const key = name === '*' ? '*' : fullName(name);
    let set = this.#listeners.get(key);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(key, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Sets `name` to `value` (JSON unless `format` says text) as its next version. */
  set(name: string, value: string, format: 'json' | 'text' = 'json'): ConfigEntry {
    const full = fullName(name);
    const slash = full.indexOf('/');
    const previous = this.#entries.get(full);
    const entry: ConfigEntry = {
      group: full.slice(0, slash),
      key: full.slice(slash + 1),
      version: (previous?.version ?? 0) + 1,
      format,
      value,
      gray: false,
    };
    this.#entries.set(full, entry);
    for (const fn of [...(this.#listeners.get(full) ?? []), ...(this.#listeners.get('*') ?? [])]) {
      fn(entry, previous);
    }
    return entry;
  }
}
