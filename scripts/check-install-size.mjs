#!/usr/bin/env node
// What a user installs: packs packages/peakware (build first), installs the tarball into
// empty temp apps offline from the local npm cache, and prints each app's package count and
// bytes in node_modules (the sum of file sizes). Apps: `guard` (`--omit=optional`, the
// tarball alone), `rpc` (`--omit=optional` plus msgpackr and zod, what peakware/rpc needs)
// and `full` (the default install, every optional dependency, plus zod). Each app then
// imports its subpaths at run time (`full`: every subpath) and type-checks a file importing
// them with skipLibCheck: false (after adding @types/node); `guard` also runs
// `peak --version` and `peak server`, which must name the packages it lacks. An npm
// EBADENGINE warning (a dependency that excludes this Node), or a shipped file still naming
// a source map (`//# sourceMappingURL=`: the maps are not shipped), fails the check.
//   node scripts/check-install-size.mjs [--json] [--keep]
// Exit code 0 when every check passed, 1 otherwise. Takes one to two minutes.
import { spawnSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkgDir = path.join(root, 'packages', 'peakware');
const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function run(cmd, args, cwd, env = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function bytesIn(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) total += bytesIn(p);
    else if (entry.name !== '.package-lock.json') total += lstatSync(p).size;
  }
  return total;
}

/** Files under `dir` that end with a `//# sourceMappingURL=` comment. */
function filesNamingMaps(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.(js|ts)$/.test(entry.name)) continue;
    const p = path.join(entry.parentPath ?? entry.path, entry.name);
    if (/\/\/# sourceMappingURL=/.test(readFileSync(p, 'utf8'))) out.push(p);
  }
  return out;
}

const work = mkdtempSync(path.join(tmpdir(), 'peak-install-'));
const problems = [];
const apps = [];
try {
  const pack = run('npm', ['pack', '--json', '--pack-destination', work], pkgDir);
  if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
  const [packed] = JSON.parse(pack.stdout);
  const tarball = path.join(work, packed.filename);
  const manifest = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const exportsMap = manifest.exports;
  // The ranges peakware names, so the offline install resolves what the cache holds.
  const ranges = { ...manifest.optionalDependencies, ...manifest.peerDependencies };
  const spec = (name) => (ranges[name] === undefined ? name : `${name}@${ranges[name]}`);
  const subpaths = Object.keys(exportsMap)
    .filter((k) => k !== './package.json')
    .map((k) => (k === '.' ? 'peakware' : `peakware/${k.slice(2)}`));

  const scenarios = [
    { name: 'guard', omit: true, extras: [], imports: ['peakware/guard', 'peakware/core'] },
    {
      name: 'rpc',
      omit: true,
      extras: ['msgpackr', 'zod'],
      imports: ['peakware/rpc', 'peakware/registry'],
    },
    { name: 'full', omit: false, extras: ['zod'], imports: subpaths },
  ];
  for (const s of scenarios) {
    const dir = path.join(work, s.name);
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, 'package.json'),
      `${JSON.stringify({ name: `app-${s.name}`, private: true, type: 'module' })}\n`,
    );
    const install = run(
      'npm',
      [
        'install',
        '--offline',
        ...(s.omit ? ['--omit=optional'] : []),
        '--no-audit',
        '--no-fund',
        tarball,
        ...s.extras.map(spec),
      ],
      dir,
    );
    if (install.status !== 0) {
      problems.push(
        `${s.name}: npm install failed: ${install.stderr.trim().split('\n').slice(-5).join(' | ')}`,
      );
      continue;
    }
    if (/EBADENGINE/.test(install.stderr)) {
      problems.push(`${s.name}: npm warned EBADENGINE: ${install.stderr.trim()}`);
    }
    const lock = JSON.parse(
      readFileSync(path.join(dir, 'node_modules', '.package-lock.json'), 'utf8'),
    );
    const packages = Object.keys(lock.packages).filter((k) => k.startsWith('node_modules/'));
    const app = {
      name: s.name,
      omit: s.omit,
      extras: s.extras,
      packages: packages.length,
      bytes: bytesIn(path.join(dir, 'node_modules')),
      peakwareBytes: bytesIn(path.join(dir, 'node_modules', 'peakware')),
      imports: s.imports,
    };
    apps.push(app);
    const imported = run(
      process.execPath,
      ['--input-type=module', '-e', s.imports.map((m) => `await import('${m}');`).join('\n')],
      dir,
    );
    if (imported.status !== 0)
      problems.push(`${s.name}: importing ${s.imports.join(', ')} failed:\n${imported.stderr}`);
    if (s.name === 'guard') {
      const mapped = filesNamingMaps(path.join(dir, 'node_modules', 'peakware', 'dist'));
      if (mapped.length > 0)
        problems.push(
          `guard: ${mapped.length} shipped files name a source map that is not shipped, e.g. ${mapped[0]}`,
        );
      const peak = path.join(dir, 'node_modules', '.bin', 'peak');
      const version = run(peak, ['--version'], dir);
      if (version.status !== 0) problems.push(`guard: peak --version failed: ${version.stderr}`);
      const server = run(peak, ['server', '--data', path.join(dir, '.peak')], dir);
      app.peakServer = server.stderr.trim();
      if (
        server.status !== 1 ||
        !/PEAK_MISSING_DEPENDENCY/.test(server.stderr) ||
        !/'fastify'/.test(server.stderr)
      ) {
        problems.push(`guard: peak server should name its missing packages, got: ${server.stderr}`);
      }
    }
    {
      // @types/node is every TypeScript Node app's; it is installed after the count.
      const types = run(
        'npm',
        ['install', '--offline', '--no-audit', '--no-fund', '@types/node@^20'],
        dir,
      );
      if (types.status !== 0)
        problems.push(`${s.name}: installing @types/node failed: ${types.stderr}`);
      writeFileSync(
        path.join(dir, 'tsconfig.json'),
        `${JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          files: ['imports.ts'],
        })}\n`,
      );
      writeFileSync(
        path.join(dir, 'imports.ts'),
        `${s.imports.map((m, i) => `import * as m${i} from '${m}';`).join('\n')}\nexport const modules = [${s.imports.map((_, i) => `m${i}`).join(', ')}];\n`,
      );
      const check = run(process.execPath, [tsc, '-p', dir], dir);
      app.typecheck = check.status === 0 ? 'ok' : check.stdout.trim();
      if (check.status !== 0) problems.push(`${s.name}: type-check failed:\n${check.stdout}`);
    }
  }
} catch (err) {
  problems.push(err instanceof Error ? err.message : String(err));
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
if (json) {
  process.stdout.write(
    `${JSON.stringify({ node: process.version, apps, problems, work: keep ? work : undefined })}\n`,
  );
} else {
  console.log(
    `check-install-size: node ${process.version}, npm install --offline --omit=optional <tarball> [extras]`,
  );
  for (const a of apps) {
    console.log(
      `  ${a.name.padEnd(6)} ${String(a.packages).padStart(3)} packages  ${mb(a.bytes).padStart(8)}  (peakware ${mb(a.peakwareBytes)})  ${a.omit ? '--omit=optional' : 'default'}${a.extras.length > 0 ? ` + ${a.extras.join(' ')}` : ''}`,
    );
    console.log(
      `         imports and type-checks (skipLibCheck: false): ${a.imports.length === 1 ? a.imports[0] : a.imports.length > 3 ? `all ${a.imports.length} subpaths` : a.imports.join(', ')}: ${a.typecheck === 'ok' ? 'ok' : 'FAILED'}`,
    );
  }
  for (const p of problems) console.log(`problem: ${p}`);
  if (keep) console.log(`kept: ${work}`);
}
process.exitCode = problems.length === 0 ? 0 : 1;
