import type pg from 'pg';

/**
 * `pool` with an idle-client error handler that lets PostgreSQL's shutdown through:
 * `pool.end()` resolves before its clients' sockets close, so a client still open when
 * the test's `after` stops the server's PostgreSQL gets 57P01 (shutting down) as an idle
 * client's error, which a pool without a handler throws as an uncaught exception. Any other
 * error still throws.
 */
export function quietAtShutdown<P extends pg.Pool>(pool: P): P {
  pool.on('error', (err: Error & { code?: string }) => {
    if (err.code !== '57P01') throw err;
  });
  return pool;
}
