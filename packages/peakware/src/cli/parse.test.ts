import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Command, resolve } from './command.js';
import { numberOption, parseNumber, parsePort, parseSpan, parseTime, spanText } from './parse.js';

describe('cli number options name the text they were given', () => {
  it('parseNumber accepts numbers in range and names the option and the text otherwise', () => {
    assert.equal(parseNumber('2.5', '--x', { min: 0 }), 2.5);
    assert.equal(parseNumber('-3', '--x', { integer: true }), -3);
    for (const [text, range, said] of [
      ['abc', {}, "--x must be a number, got 'abc'"],
      ['', { min: 0 }, "--x must be a number of 0 or more, got ''"],
      ['1.5', { min: 1, integer: true }, "--x must be a whole number of 1 or more, got '1.5'"],
      ['1e3', { max: 10, integer: true }, "--x must be a whole number of 10 or less, got '1e3'"],
      ['11', { min: 1, max: 10 }, "--x must be a number from 1 to 10, got '11'"],
      ['Infinity', {}, "--x must be a number, got 'Infinity'"],
    ] as const) {
      assert.throws(() => parseNumber(text, '--x', range), { code: 'PEAK_USAGE', message: said });
    }
    assert.throws(() => parseNumber(undefined, '--x'), { message: '--x needs a value' });
    assert.throws(() => parsePort('eighty', '--port'), {
      message: "--port must be a whole number from 0 to 65535, got 'eighty'",
    });
    assert.equal(numberOption({}, 'limit'), undefined);
    assert.equal(numberOption({ limit: '7' }, 'limit', { integer: true }), 7);
  });

  it('declared integer and number options are checked before run, naming the text', async () => {
    const cmd: Command = {
      name: 'top',
      summary: 'top',
      options: {
        interval: { type: 'string', description: 'i', number: { min: 0.5 } },
        max: { type: 'string', description: 'm', integer: { min: 1, max: 9 } },
      },
      run: () => 0,
    };
    const ok = await resolve(cmd, ['--interval', '0.5', '--max', '9'], {});
    assert.equal(ok.ctx.values.interval, '0.5');
    await assert.rejects(resolve(cmd, ['--interval', 'x'], {}), {
      message: "--interval must be a number of 0.5 or more, got 'x' (for 'top')",
    });
    await assert.rejects(resolve(cmd, ['--max', 'NaN'], {}), {
      message: "--max must be a whole number from 1 to 9, got 'NaN' (for 'top')",
    });
  });
});

describe('cli time options', () => {
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  /** Asserts that `text` is refused, the message naming the option, its forms and the text. */
  function refused(text: string, option: string, relative: 'ahead' | 'ago', forms: string): void {
    assert.throws(
      () => parseTime(text, option, relative, now),
      (err: Error) =>
        err.message.startsWith(`${option} must be ${forms}`) &&
        err.message.endsWith(`got '${text}'`),
    );
  }
  it('a schedule takes +N[s|m|h|d] ahead of now, ISO times and epoch ms', () => {
    assert.equal(parseTime('+90s', '--at', 'ahead', now), now + 90_000);
    assert.equal(parseTime('+1.5h', '--at', 'ahead', now), now + 5_400_000);
    assert.equal(parseTime('+2d', '--at', 'ahead', now), now + 2 * 86_400_000);
    assert.equal(
      parseTime('2026-12-12T20:00:00+08:00', '--at', 'ahead', now),
      Date.UTC(2026, 11, 12, 12),
    );
    assert.equal(parseTime('1796000000000', '--at', 'ahead', now), 1_796_000_000_000);
    // A span without its '+' is a query's "ago", not a schedule's; a short number is no time.
    for (const bad of ['10m', '123', 'tomorrow', '+10w', ''])
      refused(bad, '--at', 'ahead', '+N[s|m|h|d] from now, an ISO time');
  });
  it('a query takes N[s|m|h|d] back from now, ISO times and epoch ms', () => {
    assert.equal(parseTime('30m', '--from', 'ago', now), now - 1_800_000);
    assert.equal(parseTime('1d', '--from', 'ago', now), now - 86_400_000);
    assert.equal(parseTime('2026-12-07', '--from', 'ago', now), Date.UTC(2026, 11, 7));
    assert.equal(parseTime('1700000000000', '--from', 'ago', now), 1_700_000_000_000);
    for (const bad of ['+30m', 'yesterday', '2026-13-45'])
      refused(bad, '--from', 'ago', 'N[s|m|h|d] ago (30m, 2h), an ISO time');
  });
});

describe('cli span options', () => {
  it('--every takes N[s|m|h|d] of at least its minimum, and spans print in their largest unit', () => {
    assert.equal(parseSpan('1d', '--every', 60_000), 86_400_000);
    assert.equal(parseSpan('90m', '--every', 60_000), 5_400_000);
    assert.equal(parseSpan('1.5h', '--every', 60_000), 5_400_000);
    for (const bad of ['30s', '0m', 'daily', '1w', '-1d'])
      assert.throws(
        () => parseSpan(bad, '--every', 60_000),
        (err: Error) =>
          err.message === `--every must be N[s|m|h|d] of at least 1m (1d, 12h, 90m), got '${bad}'`,
      );
    assert.deepEqual(
      [86_400_000, 3 * 86_400_000, 5_400_000, 3_600_000, 90_000, 1500].map(spanText),
      ['1d', '3d', '90m', '1h', '90s', '1500ms'],
    );
  });
});
