/** The shop's command line: `--help` answers, a bad flag is one line plus the usage, exit 2. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

// A bound for a loaded host (test files run side by side), not a claim about speed: the
// shop's imports alone took over 30 s once while other files kept both cores busy.
/** Runs the shop's main with `args` to its exit: its exit code, stdout and stderr. */
function shop(
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [main, ...args],
      { encoding: 'utf8', timeout: 120_000 },
      (_err, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    );
  });
}

// Each case is a process of its own that only parses its flags: they run side by side (most
// of each one's time is loading the shop's modules).
test('--help and -h print every flag and exit 0 without starting the chain', async () => {
  const runs = await Promise.all(['--help', '-h'].map((flag) => shop(flag)));
  for (const run of runs) {
    assert.equal(run.status, 0, run.stderr);
    for (const name of ['--stock', '--buyers', '--exit', '--smoke', '--capacity', '--help'])
      assert.match(run.stdout, new RegExp(`^  ${name}\\b`, 'm'));
    assert.doesNotMatch(run.stdout, /starting the buy chain/);
  }
});

test('an unknown flag, a missing value or a stray word: one line, the usage, exit 2, no stack', async () => {
  const cases = [
    [['--bogus'], "Unknown option '--bogus'"],
    [['--port'], "'--port <value>' argument missing"],
    [['sale'], "Unexpected argument 'sale'"],
    [['--buyers', 'many'], "--buyers must be an integer >= 1, got 'many'"],
    [['--port', 'x'], "--port must be an integer from 0 to 65535, got 'x'"],
  ] as const;
  const runs = await Promise.all(cases.map(([args]) => shop(...args)));
  for (const [i, [args, said]] of cases.entries()) {
    const run = runs[i]!;
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, run.stderr);
    assert.ok(lines[0]!.startsWith('shop: ') && lines[0]!.includes(said), lines[0]);
    assert.match(lines[1]!, /^usage: npm start -- \[flags\]/);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
    assert.equal(run.stdout, '');
  }
});

test('a capacity run sizes the chain to the machine: one inventory and one order process per two cores', async () => {
  const { capacityInstances } = await import('./capacity.js');
  assert.deepEqual([1, 2, 3, 4, 8].map(capacityInstances), [1, 1, 1, 2, 4]);
  const { stdout } = await shop('--help');
  assert.match(stdout, /a capacity run: one per 2 cores/);
});
