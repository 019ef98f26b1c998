/**
 * A second process holding a cache on the same Redis (`cache-fixture-process.ts`), to show
 * that a write in this process reaches another process's L1.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cache } from '../../src/cache/index.js';
import { waitFor } from './wait.js';

/**
 * Starts the fixture on `redis` (a URL, one Redis or a cluster) with cache `name`, waits
 * until it has cached `item`, sets `item` to v2 through `cache` (same name), and waits until
 * the child saw v2; the child is killed whatever happens.
 */
export async function writeReachesChildProcess(
  cache: Cache,
  redis: string,
  name: string,
): Promise<void> {
  const fixture = path.join(
    path.dirname(fileURLToPath(import.meta.url)),
    '..',
    'cache-fixture-process.js',
  );
  const child = spawn(process.execPath, [fixture, redis, name, 'item'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  try {
    await waitFor('the child cached item', () => out.includes('cached v1'));
    await cache.set('item', 'v2');
    await waitFor('the child saw v2', () => out.includes('saw v2'));
  } finally {
    child.kill('SIGKILL');
  }
}
