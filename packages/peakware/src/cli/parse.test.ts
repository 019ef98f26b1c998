import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Command, resolve } from './command.js';
import { numberOption, parseNumber, parsePort } from './parse.js';

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
