#!/usr/bin/env node
// Runs the fault tests of issue 23 again and again and prints how many runs of each
// passed: `node scripts/soak-reliability.mjs [--runs 20] [--minutes M] [filter ...]`.
// Each run is one `node scripts/run-tests.mjs <test>` (a fresh process, fresh PostgreSQL
// and providers); the tests are interleaved so a slow spell of the machine hits them all.
// Not part of `npm test`. Build first (`npm run build`); run it niced on a shared machine:
// `nice -n 5 node scripts/soak-reliability.mjs --runs 20`. Exits 1 when any run failed.
// The shop's fault tests (a minute or two a run) are not in the default list; name them:
// `node scripts/soak-reliability.mjs --runs 5 examples/shop/dist/shop-`.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The fault tests (paths as run-tests.mjs filters). */
const FAULT_TESTS = [
  'test/registry-restart',
  'test/rpc-dead-providers',
  'test/data-deadline',
  'test/control-plane-failover',
];

let runs = 20;
let minutes = Number.POSITIVE_INFINITY;
let log;
const filters = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') runs = Number(args[++i]);
  else if (args[i] === '--minutes') minutes = Number(args[++i]);
  else if (args[i] === '--log') log = args[++i];
  else filters.push(args[i]);
}
if (!Number.isInteger(runs) || runs <= 0 || !(minutes > 0)) {
  console.error('usage: soak-reliability.mjs [--runs N] [--minutes M] [--log FILE] [test ...]');
  process.exit(2);
}
const tests = filters.length > 0 ? filters : FAULT_TESTS;
const until = Date.now() + minutes * 60_000;
const counts = new Map(tests.map((t) => [t, { pass: 0, fail: 0 }]));

function runOnce(test) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'scripts', 'run-tests.mjs'), test], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c.toString();
    });
    child.stderr.on('data', (c) => {
      out += c.toString();
    });
    child.on('close', (code) => resolve({ ok: code === 0, out }));
  });
}

const say = (line) => {
  console.log(line);
  if (log !== undefined) appendFileSync(log, `${line}\n`);
};

let done = 0;
for (let run = 1; run <= runs && Date.now() < until; run++) {
  for (const test of tests) {
    if (Date.now() >= until) break;
    const started = Date.now();
    const { ok, out } = await runOnce(test);
    const c = counts.get(test);
    if (ok) c.pass++;
    else c.fail++;
    const secs = ((Date.now() - started) / 1000).toFixed(0);
    say(`run ${run} ${test}: ${ok ? 'pass' : 'FAIL'} (${secs} s)`);
    if (!ok) {
      const failing = out
        .split('\n')
        .filter((l) => /✖|Error|timed out|diagnostic|^# /.test(l))
        .slice(0, 12)
        .join('\n');
      say(failing);
    }
  }
  done = run;
}
say(`soak: ${done} round(s)`);
for (const [test, c] of counts) say(`  ${test}: ${c.pass} of ${c.pass + c.fail} passed`);
process.exitCode = [...counts.values()].some((c) => c.fail > 0) ? 1 : 0;
