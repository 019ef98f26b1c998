/**
 * The package as a user installs it (scripts/check-install-size.mjs): `npm pack`, then
 * offline installs into empty apps. A service that uses only `peakware/guard` installs at
 * most 10 packages and 5 MB with `--omit=optional`; the guard, rpc and full apps import and
 * type-check their subpaths (every subpath in the full one) with skipLibCheck: false; no
 * installed package excludes Node 20 (no EBADENGINE); `peak server` without the control
 * plane's packages names them. Slow (one to three minutes of npm installs): `npm run test:slow`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

interface InstalledApp {
  name: string;
  packages: number;
  bytes: number;
  typecheck?: string;
  peakServer?: string;
}

// dist/test/ -> the repository root
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

describe('the installed package', () => {
  it('installs light for guard, type-checks every subpath, and names what peak server lacks', () => {
    const run = spawnSync(
      process.execPath,
      [path.join(repo, 'scripts', 'check-install-size.mjs'), '--json'],
      { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
    );
    const report = JSON.parse(run.stdout) as { apps: InstalledApp[]; problems: string[] };
    assert.deepEqual(report.problems, []);
    assert.equal(run.status, 0);
    const byName = new Map(report.apps.map((a) => [a.name, a]));
    const guard = byName.get('guard');
    assert.ok(guard !== undefined, 'the guard app was installed');
    assert.ok(
      guard.packages <= 10,
      `guard-only installs ${guard.packages} packages (goal: at most 10)`,
    );
    assert.ok(guard.bytes <= 5e6, `guard-only installs ${guard.bytes} bytes (goal: at most 5 MB)`);
    assert.match(guard.peakServer ?? '', /'fastify'.*PEAK_MISSING_DEPENDENCY/s);
    for (const name of ['guard', 'rpc', 'full'])
      assert.equal(byName.get(name)?.typecheck, 'ok', name);
  });
});
