/**
 * Test support: checks Prometheus exposition text with Prometheus's own checker,
 * `promtool check metrics` (Debian package `prometheus`; `.ci/run` installs it when
 * missing). Exit 0 = valid and lint-clean; 1 = unparseable; 3 = lint problems (missing
 * HELP, bad counter names, ...). Both are failures here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Asserts `promtool check metrics` accepts `text` without a single complaint. */
export function assertPromtoolAccepts(text: string, what: string): void {
  const res = spawnSync('promtool', ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (res.error !== undefined && (res.error as NodeJS.ErrnoException).code === 'ENOENT') {
    assert.fail(
      'promtool is not installed: apt-get install -y --no-install-recommends prometheus (what .ci/run does)',
    );
  }
  assert.equal(
    res.status,
    0,
    `promtool check metrics refused ${what} (exit ${res.status}):\n${res.stdout}${res.stderr}`,
  );
  assert.equal(`${res.stdout}${res.stderr}`.trim(), '', `promtool complaints about ${what}`);
}
