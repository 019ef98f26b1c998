#!/usr/bin/env node
// Builds the console's browser app (src/console/web) into dist/console-web, which `peak
// server` serves at /console: type-checks it (tsc --noEmit, its own tsconfig: DOM, Preact's
// JSX), bundles it with esbuild (Preact, uPlot and the typed admin sections in one minified
// file, no CDN), and writes index.html naming the hashed files. Run by `npm run build` after
// tsc -b; `--no-check` skips the type check.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const web = path.join(pkg, 'src', 'console', 'web');
const out = path.join(pkg, 'dist', 'console-web');
const require = createRequire(import.meta.url);

if (!process.argv.includes('--no-check')) {
  const tsc = require.resolve('typescript/bin/tsc');
  const check = spawnSync(process.execPath, [tsc, '-p', path.join(web, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  if (check.status !== 0) {
    process.stderr.write('build-console: the console app does not type-check\n');
    process.exit(1);
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, 'assets'), { recursive: true });
const result = await build({
  entryPoints: { app: path.join(web, 'main.tsx') },
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  minify: true,
  legalComments: 'none',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (js === undefined || css === undefined) {
  process.stderr.write(`build-console: expected one .js and one .css, got ${outputs.join(', ')}\n`);
  process.exit(1);
}
const page = readFileSync(path.join(web, 'index.html'), 'utf8')
  .replace('{{css}}', `/console/assets/${css}`)
  .replace('{{js}}', `/console/assets/${js}`);
writeFileSync(path.join(out, 'index.html'), page);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(
  `build-console: dist/console-web (${js}, ${css}; ${Math.round(bytes / 1024)} KiB)\n`,
);
