/**
 * Every `peak` entry answers `--help`; a bad flag or command is one line plus the usage on
 * stderr, exit code 2, and no stack trace (real `peak` processes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/peak.js');

function peak(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
}

test('peak, a group and a leaf command answer --help with their usage, exit 0', () => {
  for (const [args, usage] of [
    [['--help'], 'Usage: peak <command> [options]'],
    [['mq', '--help'], 'Usage: peak mq <command> [options]'],
    [['server', '-h'], 'Usage: peak server [options]'],
  ] as const) {
    const run = peak(...args);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.stdout.includes(usage), run.stdout);
  }
});

test('peak trace --help says its exit codes; a group lists delete verbs with their aliases', () => {
  const trace = peak('trace', '--help');
  assert.match(
    trace.stdout,
    /Exit code: 0 when no span of the trace has an error, 1 when one does/,
  );
  const plan = peak('plan', '--help');
  assert.match(plan.stdout, /^ {2}delete \(rm\) {2}delete a plan/m);
});

test('a bad flag or command: one line, the usage line, exit 2, no stack trace', () => {
  for (const [args, said, usage] of [
    [['--bogus'], "Unknown option '--bogus'", 'Usage: peak <command> [options]'],
    [['server', '--bogus'], "Unknown option '--bogus'", 'Usage: peak server [options]'],
    [['mq', 'nope'], "unknown command 'peak mq nope'", 'Usage: peak mq <command> [options]'],
    [['server', '--port'], "'--port <value>' argument missing", 'Usage: peak server [options]'],
  ] as const) {
    const run = peak(...args);
    assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, run.stderr);
    assert.ok(lines[0]!.startsWith('peak: error: ') && lines[0]!.includes(said), lines[0]);
    assert.equal(lines[1], usage);
    assert.equal(run.stdout, '');
  }
});

test('peak completion bash: a script that completes commands, subcommands and options', () => {
  const script = peak('completion', 'bash');
  assert.equal(script.status, 0, script.stderr);
  assert.match(script.stdout, /complete -o default -F _peak peak/);
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'peak-completion-')), 'peak.bash');
  writeFileSync(file, script.stdout);
  const complete = (...words: string[]) =>
    spawnSync(
      'bash',
      [
        '-c',
        `source "${file}"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _peak; echo "\${COMPREPLY[*]}"`,
      ],
      { encoding: 'utf8' },
    ).stdout.trim();
  assert.equal(complete('peak', 'mq', 'se'), 'send');
  assert.equal(complete('peak', 'con'), 'config context');
  assert.ok(complete('peak', 'mq', 'send', 'orders', '--de').split(' ').includes('--delay'));
  // An option's value is not taken for a command word.
  assert.ok(complete('peak', 'mq', '--server', 'http://x', 'con').includes('consume'));
  const zsh = peak('completion', 'zsh');
  assert.equal(zsh.status, 0);
  assert.match(zsh.stdout, /bashcompinit/);
  assert.equal(peak('completion', 'fish').status, 2);
  rmSync(path.dirname(file), { recursive: true, force: true });
});

test('-o json is --json, -o yaml the same document as YAML; -o takes only text, json, yaml or wide', () => {
  const json = peak('--version', '-o', 'json');
  assert.equal(json.status, 0, json.stderr);
  assert.match(JSON.parse(json.stdout).version as string, /^\d+\.\d+\.\d+/);
  const yaml = peak('--version', '-o', 'yaml');
  assert.equal(yaml.status, 0, yaml.stderr);
  assert.deepEqual(parseYaml(yaml.stdout), JSON.parse(json.stdout));
  assert.match(yaml.stdout, /^version: "?\d+\.\d+\.\d+"?$/m);
  // An error under -o yaml is a YAML document on stdout too (and the line on stderr).
  const failed = peak('mq', 'topics', 'list', '--server', 'http://127.0.0.1:1', '-o', 'yaml');
  assert.equal(failed.status, 1);
  assert.match((parseYaml(failed.stdout) as { error: { code: string } }).error.code, /^PEAK_/);
  const bad = peak('--version', '-o', 'xml');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /-o\/--output must be text, json, yaml or wide, got 'xml'/);
});
