import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { isPeakError } from './errors.js';
import { silentLogger } from './logger.js';

describe('silentLogger: the SDK default, and PEAK_LOG_LEVEL', () => {
  it('is silent without PEAK_LOG_LEVEL (or with silent)', () => {
    assert.equal(silentLogger({}).level, 'silent');
    assert.equal(silentLogger({ PEAK_LOG_LEVEL: 'silent' }).level, 'silent');
  });

  it('needs no pino while silent: pino (an optional dependency) is loaded on first use', () => {
    const loggerUrl = new URL('./logger.js', import.meta.url).href;
    const script = `
      import { createRequire } from 'node:module';
      const { silentLogger, createLogger } = await import(${JSON.stringify(loggerUrl)});
      const log = silentLogger({});
      log.child({ a: 1 }).warn({ b: 2 }, 'discarded');
      log.info('discarded');
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/pino/'));
      const before = loaded();
      createLogger({ level: 'silent' });
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(out), { before: false, after: true });
  });

  it('logs at the level PEAK_LOG_LEVEL names, one logger per process and level', () => {
    const a = silentLogger({ PEAK_LOG_LEVEL: 'debug' });
    assert.equal(a.level, 'debug');
    assert.equal(silentLogger({ PEAK_LOG_LEVEL: ' DEBUG ' }), a);
    assert.equal(silentLogger({ PEAK_LOG_LEVEL: 'warn' }).level, 'warn');
  });

  it('refuses a level it does not know, naming the variable', () => {
    assert.throws(
      () => silentLogger({ PEAK_LOG_LEVEL: 'verbose' }),
      (err: unknown) =>
        isPeakError(err, 'PEAK_INVALID_ARGUMENT') &&
        /PEAK_LOG_LEVEL must be one of/.test(String(err)),
    );
  });
});
