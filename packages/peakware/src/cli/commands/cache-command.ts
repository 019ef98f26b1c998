/**
 * `peak cache hot` lists a cache's hottest keys over its last windows. It reads the sorted
 * sets every instance reports its top keys to in Redis (`peak:cache:<name>:hot:<window>`),
 * the same ones the instances decide from, so it needs the Redis URL and the cache's name
 * and no control plane: the hot keys are never in peak server.
 */
import { readHotKeys } from '../../cache/hot-keys.js';
import { openRedis } from '../../cache/redis-connection.js';
import { ErrorCodes, PeakError, UsageError } from '../../core/errors.js';
import type { Command } from '../command.js';
import { parseNumber } from '../parse.js';

const hot: Command = {
  name: 'hot',
  summary: "a cache's hottest keys over its last windows, summed over every instance",
  description:
    'Reads the per-window sorted sets the instances report their top keys to (hotKeys on). ' +
    '"hot" is what the instances do: a key at or above the threshold in any of the windows ' +
    "read is served from L1 everywhere. Give the instances' threshold and window if they " +
    'are not the defaults.',
  options: {
    redis: {
      type: 'string',
      valueName: 'URL',
      description: 'the Redis the cache uses',
      env: 'PEAK_REDIS_URL',
    },
    name: { type: 'string', valueName: 'NAME', description: "the cache's name" },
    threshold: {
      type: 'string',
      valueName: 'N',
      description: 'accesses per window over all instances that make a key hot',
      default: '1000',
    },
    'window-ms': {
      type: 'string',
      valueName: 'MS',
      description: "the instances' window length",
      default: '500',
    },
    windows: {
      type: 'string',
      valueName: 'N',
      description: 'complete windows to read, newest first',
      default: '4',
    },
    top: { type: 'string', valueName: 'N', description: 'keys to list', default: '20' },
  },
  examples: [
    'peak cache hot --redis redis://127.0.0.1:6379 --name products',
    'peak cache hot --redis redis+cluster://10.0.0.1:7000,10.0.0.2:7000 --name products',
    'peak cache hot --name products --threshold 500 --json',
  ],
  async run({ values, out }) {
    const url = values.redis;
    if (typeof url !== 'string' || url === '')
      throw new UsageError('give the Redis URL with --redis URL (or PEAK_REDIS_URL)');
    const name = values.name;
    if (typeof name !== 'string' || !/^[a-z0-9._-]{1,64}$/.test(name))
      throw new UsageError(
        `give the cache's name with --name (a-z 0-9 . _ -), got ${JSON.stringify(name)}`,
      );
    const threshold = parseNumber(values.threshold, '--threshold', { min: 1, integer: true });
    const windowMs = parseNumber(values['window-ms'], '--window-ms', { min: 1, integer: true });
    const windows = parseNumber(values.windows, '--windows', { min: 1, integer: true });
    const top = parseNumber(values.top, '--top', { min: 1, integer: true });
    const redis = openRedis(url, {
      lazyConnect: true,
      enableAutoPipelining: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 5000,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined); // the command's own error says it
    try {
      await redis.connect().catch((err: unknown) => {
        throw new PeakError(
          ErrorCodes.CACHE_UNAVAILABLE,
          `cannot reach Redis at ${url}: ${(err as Error).message}; check --redis`,
          { cause: err },
        );
      });
      const report = await readHotKeys(redis, { name, threshold, windowMs, windows, top });
      out.json({ cache: name, threshold, windowMs, windows: report.windows, keys: report.keys });
      out.line(
        `cache ${name}: last ${windows} windows of ${windowMs} ms, hot at ${threshold} accesses a window over all instances`,
      );
      if (report.keys.length === 0) {
        out.line(
          '  no key reported in those windows (is hotKeys on for this cache, and the name right?)',
        );
        return 0;
      }
      const width = Math.max(3, ...report.keys.map((k) => k.key.length));
      out.line(`  ${'key'.padEnd(width)}  ${'last'.padStart(8)}  ${'max'.padStart(8)}  hot`);
      for (const k of report.keys)
        out.line(
          `  ${k.key.padEnd(width)}  ${String(k.last).padStart(8)}  ${String(k.max).padStart(8)}  ${k.hot ? 'yes' : 'no'}`,
        );
      return 0;
    } finally {
      redis.disconnect();
    }
  },
};

/** `peak cache`: tools for `peakware/cache`. */
export const cacheCommand: Command = {
  name: 'cache',
  summary: 'inspect peakware/cache caches (hot keys)',
  subcommands: [hot],
};
