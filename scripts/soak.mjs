#!/usr/bin/env node
// Runs one test file (or every file a filter matches) N times in a row and prints how many
// runs passed, with each failure's first error: `node scripts/soak.mjs <filter> --runs N`.
// Issue 23 asks for 20 consecutive passes of each chaos test, e.g.
//   nice -n 5 node scripts/soak.mjs examples/shop/dist/shop-chaos-redis --runs 20
// Each run is one `node scripts/run-tests.mjs <filter>` (a fresh process: fresh PostgreSQL,
// Redis and providers); slow tests (`*.slow.test.ts`) are run when the filter names them.
// Build first (`npm run build`). Options: --stop-on-fail (stop at the first failure),
// --log FILE (append each line there too, and keep a failed run's whole output in
// FILE.runN.txt). Exits 1 when any run failed, 2 on a usage error.
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let runs;
let log;
let stopOnFail = false;
const filters = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') runs = Number(args[++i]);
  else if (args[i] === '--log') log = args[++i];
  else if (args[i] === '--stop-on-fail') stopOnFail = true;
  else if (args[i].startsWith('--')) usage(`unknown option ${args[i]}`);
  else filters.push(args[i]);
}
if (filters.length === 0) usage('a test filter is required');
if (!Number.isInteger(runs) || runs <= 0) usage('--runs N (a positive integer) is required');

function usage(message) {
  console.error(
    `soak: ${message}\nusage: node scripts/soak.mjs <filter> [filter ...] --runs N [--stop-on-fail] [--log FILE]`,
  );
  process.exit(2);
}

const say = (line) => {
  console.log(line);
  if (log !== undefined) appendFileSync(log, `${line}\n`);
};

/** One run of the test runner on the filters: whether it passed, and its output. */
function runOnce() {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(root, 'scripts', 'run-tests.mjs'), ...filters],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c) => {
      out += c.toString();
    });
    child.stderr.on('data', (c) => {
      out += c.toString();
    });
    child.on('close', (code, signal) => resolve({ ok: code === 0, out, code, signal }));
  });
}

/** The first error of a failed run: the first failing test and the lines that say why. */
function firstError(out) {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => /✖|not ok|Error|AssertionError|timed out/.test(l));
  if (at === -1) return lines.slice(-8).join('\n');
  // The failing test and its error, then what the shop's report said of its books and deaths.
  const head = lines.slice(at, at + 3);
  const said = lines
    .slice(at)
    .filter((l) => /books: |events: |txn: |coupons: |run: |died|expected:|Error: /.test(l));
  return [...head, ...new Set(said.slice(0, 12))].map((l) => l.slice(0, 400)).join('\n');
}

const name = filters.join(' ');
let pass = 0;
let fail = 0;
for (let run = 1; run <= runs; run++) {
  const started = Date.now();
  const { ok, out, code, signal } = await runOnce();
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  if (ok) pass++;
  else fail++;
  say(`soak: run ${run} of ${runs} ${name}: ${ok ? 'pass' : 'FAIL'} (${secs} s)`);
  if (!ok) {
    say(`  first error (runner ended with ${signal ?? `code ${code}`}):`);
    for (const l of firstError(out).split('\n')) say(`    ${l}`);
    if (log !== undefined) {
      writeFileSync(`${log}.run${run}.txt`, out);
      say(`  whole output: ${log}.run${run}.txt`);
    }
    if (stopOnFail) break;
  }
}
say(`soak: ${name}: ${pass} of ${pass + fail} runs passed, ${fail} failed`);
process.exitCode = fail > 0 ? 1 : 0;
