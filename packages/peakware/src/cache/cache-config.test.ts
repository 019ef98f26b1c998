import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { validateValue } from '../config/config-schema.js';
import { InMemoryConfigSource } from '../config/config-source.js';
import { isPeakError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { Cache } from './cache.js';
import { bindCacheSettings, CACHE_SETTINGS_SCHEMA } from './cache-config.js';

function capturedLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'warn', destination }) };
}

describe('cache settings from the config center', () => {
  it('applies the item in force at bind time and every new version', async () => {
    const source = new InMemoryConfigSource();
    source.set('cache/products', '{"l1TtlMs": 60000}');
    const cache = new Cache({ name: 'products' });
    const stop = bindCacheSettings(cache, source);
    assert.deepEqual(cache.settings(), { l1Enabled: true, freezeWrites: false, l1TtlMs: 60_000 });

    // The promotion window: one-minute L1, data changes closed.
    source.set('cache/products', '{"l1TtlMs": 60000, "freezeWrites": true}');
    await assert.rejects(cache.set('p1', 1), (e) => isPeakError(e, 'PEAK_CACHE_WRITES_FROZEN'));
    await assert.rejects(cache.invalidate('p1'), (e) => isPeakError(e, 'PEAK_CACHE_WRITES_FROZEN'));

    // After the sale the item drops the fields: back to what the cache had when bound.
    source.set('cache/products', '{}');
    assert.deepEqual(cache.settings(), { l1Enabled: true, freezeWrites: false });
    await cache.set('p1', 1);

    source.set('cache/products', '{"l1Enabled": false}');
    assert.equal(cache.settings().l1Enabled, false);
    stop();
    source.set('cache/products', '{"l1Enabled": true}');
    assert.equal(cache.settings().l1Enabled, false, 'unsubscribed: no longer follows');
    await cache.close();
  });

  it('keeps the settings in force when a version is not valid settings, and says why', async () => {
    const source = new InMemoryConfigSource();
    const cache = new Cache({ name: 'prices', settings: { l1TtlMs: 5000 } });
    const { lines, logger } = capturedLogger();
    bindCacheSettings(cache, source, { item: 'promo/cache-prices', logger });
    assert.deepEqual(cache.settings(), { l1Enabled: true, freezeWrites: false, l1TtlMs: 5000 });
    source.set('promo/cache-prices', '{"freezeWrites": true}');
    assert.equal(cache.settings().freezeWrites, true);
    for (const bad of ['{"freezeWrite": true}', '{"l1TtlMs": -1}', '[1]', 'not json']) {
      source.set('promo/cache-prices', bad);
      assert.equal(cache.settings().freezeWrites, true, `kept after ${bad}`);
    }
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /unknown field \\"freezeWrite\\"/);
    assert.match(lines[1]!, /l1TtlMs must be a positive integer/);
    assert.match(lines[3]!, /not JSON/);
    // Back to the baseline: the constructor's l1TtlMs comes back with the empty item.
    source.set('promo/cache-prices', '{}');
    assert.deepEqual(cache.settings(), { l1Enabled: true, freezeWrites: false, l1TtlMs: 5000 });
    await cache.close();
  });

  it('publishes a schema the config center checks the item with', () => {
    assert.deepEqual(
      validateValue({ l1TtlMs: 60_000, freezeWrites: true }, CACHE_SETTINGS_SCHEMA),
      [],
    );
    assert.notDeepEqual(validateValue({ l1TtlMs: 0 }, CACHE_SETTINGS_SCHEMA), []);
    assert.notDeepEqual(validateValue({ freezeWrite: true }, CACHE_SETTINGS_SCHEMA), []);
  });
});
