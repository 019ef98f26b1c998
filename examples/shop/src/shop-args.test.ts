/** The shop's command line: `--help` answers, a bad flag is one line plus the usage, exit 2. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

// A bound for a loaded host (test files run side by side), not a claim about speed: the
// shop's imports alone took over 30 s once while other files kept both cores busy.
function shop(...args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 120_000 });
}

test('--help and -h print every flag and exit 0 without starting the chain', () => {
  for (const flag of ['--help', '-h']) {
    const run = shop(flag);
    assert.equal(run.status, 0, run.stderr);
    for (const name of ['--stock', '--buyers', '--exit', '--smoke', '--capacity', '--help'])
      assert.match(run.stdout, new RegExp(`^  ${name}\\b`, 'm'));
    assert.doesNotMatch(run.stdout, /starting the buy chain/);
  }
});

test('an unknown flag, a missing value or a stray word: one line, the usage, exit 2, no stack', () => {
  for (const [args, said] of [
    [['--bogus'], "Unknown option '--bogus'"],
    [['--port'], "'--port <value>' argument missing"],
    [['sale'], "Unexpected argument 'sale'"],
    [['--buyers', 'many'], "--buyers must be an integer >= 1, got 'many'"],
    [['--port', 'x'], "--port must be an integer from 0 to 65535, got 'x'"],
  ] as const) {
    const run = shop(...args);
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, run.stderr);
    assert.ok(lines[0]!.startsWith('shop: ') && lines[0]!.includes(said), lines[0]);
    assert.match(lines[1]!, /^usage: npm start -- \[flags\]/);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
    assert.equal(run.stdout, '');
  }
});
