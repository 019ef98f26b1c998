/**
 * The peak switches from the config center: {@link bindCacheSettings} makes a {@link Cache}
 * follow one config item (default `cache/<cache name>`), so turning L1 on or off, capping
 * its TTL and freezing writes for the promotion window is a `peak config set` (or a gray
 * release to some instances) instead of a deploy. The item is the whole desired state: a
 * field left out returns to what the cache had when it was bound, so removing
 * `freezeWrites` from the item after the sale unfreezes every instance.
 *
 * Config is the same layer as the cache: the `ConfigSource` seam is imported as a type only,
 * so `peakware/cache` never loads the config client; pass it the one you have.
 */

import type { ConfigEntry } from '../config/config-entry.js';
import type { ConfigSchema } from '../config/config-schema.js';
import type { ConfigSource } from '../config/config-source.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { Cache } from './cache.js';
import type { CacheSettings } from './cache-options.js';

/**
 * The item's schema, for publish-time checks:
 * `peak config set cache/products '{"freezeWrites":true}' --schema '<this, as JSON>'`.
 */
export const CACHE_SETTINGS_SCHEMA: ConfigSchema = {
  type: 'object',
  properties: {
    l1Enabled: { type: 'boolean' },
    l1TtlMs: { type: 'integer', minimum: 1 },
    freezeWrites: { type: 'boolean' },
  },
  additionalProperties: false,
};

/** Options of {@link bindCacheSettings}. */
export interface CacheSettingsBindingOptions {
  /** `group/key` of the item; default `cache/<cache name>`. */
  item?: string;
  /** Where a refused item is reported; default silent. */
  logger?: Logger;
}

/** The settings an item's JSON asks for, or why it is refused. */
export function parseCacheSettings(
  value: string,
): { settings: CacheSettings } | { problem: string } {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (err) {
    return { problem: `not JSON: ${errorMessage(err)}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { problem: 'must be a JSON object such as {"l1TtlMs": 60000, "freezeWrites": true}' };
  const settings: CacheSettings = {};
  for (const [field, x] of Object.entries(v)) {
    if (field === 'l1Enabled' || field === 'freezeWrites') {
      if (typeof x !== 'boolean') return { problem: `${field} must be true or false` };
      settings[field] = x;
    } else if (field === 'l1TtlMs') {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 1)
        return { problem: 'l1TtlMs must be a positive integer (ms)' };
      settings.l1TtlMs = x;
    } else {
      return {
        problem: `unknown field ${JSON.stringify(field)} (l1Enabled, l1TtlMs, freezeWrites)`,
      };
    }
  }
  return { settings };
}

/**
 * Makes `cache` follow its settings item in `source` from now on: the item in force is
 * applied at once, and every new version as it arrives. A version that is not valid
 * settings is logged and skipped; the settings in force stay. Returns the unsubscribe.
 */
export function bindCacheSettings(
  cache: Cache,
  source: ConfigSource,
  options: CacheSettingsBindingOptions = {},
): () => void {
  const item = options.item ?? `cache/${cache.name}`;
  const log = options.logger ?? silentLogger();
  const baseline = cache.settings();
  const apply = (entry: ConfigEntry) => {
    const parsed = parseCacheSettings(entry.value);
    if ('problem' in parsed) {
      log.warn(
        { cache: cache.name, item, version: entry.version, problem: parsed.problem },
        'cache settings item refused; the settings in force stay',
      );
      return;
    }
    const s = parsed.settings;
    cache.configure({
      l1Enabled: s.l1Enabled ?? baseline.l1Enabled ?? true,
      freezeWrites: s.freezeWrites ?? baseline.freezeWrites ?? false,
      l1TtlMs: s.l1TtlMs ?? baseline.l1TtlMs ?? null,
    });
  };
  const unsubscribe = source.watch(item, (entry) => apply(entry));
  const current = source.entry(item);
  if (current !== undefined) apply(current);
  return unsubscribe;
}
