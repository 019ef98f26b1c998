#!/usr/bin/env node
// Prints a CHANGELOG section for the commits since the last tag (or all), grouped by the
// subsystem each commit's subject names before its colon ("mq: ...", "rpc: ..."), for a
// person to edit into packages/peakware/CHANGELOG.md before a release: `node scripts/changelog.mjs [from-ref]`.
import { execFileSync } from 'node:child_process';

const git = (...args) =>
  execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
let from = process.argv[2];
if (from === undefined) {
  try {
    from = git('describe', '--tags', '--abbrev=0');
  } catch {
    from = undefined; // no tag yet: everything
  }
}
const range = from === undefined ? 'HEAD' : `${from}..HEAD`;
const subjects = git('log', '--no-merges', '--format=%s', range).split('\n').filter(Boolean);
const groups = new Map();
for (const subject of subjects) {
  const m = /^([a-z0-9/ +-]{1,40}):\s+(.*)$/i.exec(subject);
  const key = m ? m[1].toLowerCase() : 'other';
  const text = m ? m[2] : subject;
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(text.length > 200 ? `${text.slice(0, 197)}...` : text);
}
console.log(`## Unreleased${from === undefined ? '' : ` (since ${from})`}\n`);
for (const key of [...groups.keys()].sort()) {
  console.log(`### ${key}\n`);
  for (const line of groups.get(key)) console.log(`- ${line}`);
  console.log('');
}
