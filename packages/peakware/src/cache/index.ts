/**
 * `peakware/cache`: a multi-level cache (in-process W-TinyLFU → Redis → your loader) with
 * invalidation across instances, run-time peak switches, hot-key detection, and hot-stock
 * engines that shave a flash sale's peak off the stock row. See README.md.
 */
export { Cache } from './cache.js';
export {
  bindCacheSettings,
  CACHE_SETTINGS_SCHEMA,
  type CacheSettingsBindingOptions,
  parseCacheSettings,
} from './cache-config.js';
export type { CacheCollector, CacheOperation, CacheOperationEvent } from './cache-events.js';
export type { CacheOptions, CacheSettings, CacheWriteOptions } from './cache-options.js';
export type { CacheStats } from './cache-stats.js';
export { FrequencySketch, hashKey } from './frequency-sketch.js';
export {
  type HotKeyRow,
  HotKeys,
  type HotKeysOptions,
  hotWindowKey,
  type ReadHotKeysOptions,
  readHotKeys,
} from './hot-keys.js';
export { LocalCache, type LocalCacheOptions, type LocalCacheStats } from './local-cache.js';
export {
  DEFAULT_STOCK_SCHEMA,
  PgStockEngine,
  type PgStockEngineOptions,
} from './pg-stock-engine.js';
export {
  isClusterUrl,
  openRedis,
  parseClusterUrl,
  type RedisClient,
  redisPeerOf,
} from './redis-connection.js';
export {
  type RedisClusterOptions,
  type RedisClusterProcess,
  type RedisDurability,
  type RedisServerOptions,
  type RedisServerProcess,
  redisServerAvailable,
  startRedisCluster,
  startRedisServer,
} from './redis-server-process.js';
export {
  type ReconcileReport,
  type ReconcileSide,
  RedisStockEngine,
  type RedisStockEngineOptions,
} from './redis-stock-engine.js';
export { RedisTier, type RedisTierOptions } from './redis-tier.js';
export type { InvalidationListener, RemoteRead, RemoteTier } from './remote-tier.js';
export {
  type DeductResult,
  MAX_UNITS,
  type ReleaseResult,
  type StockBooks,
  type StockEngine,
} from './stock-shaver.js';
export { StockWriter, type StockWriterOptions, type StockWriterStats } from './stock-writer.js';
