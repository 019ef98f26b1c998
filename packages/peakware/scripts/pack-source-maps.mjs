#!/usr/bin/env node
// The package ships no source maps (package.json `files` leaves dist/**/*.map out), so the
// `//# sourceMappingURL=` comment tsc ends each .js and .d.ts with would point at nothing.
// `strip` (npm's prepack) removes that comment from every file under dist/src; `restore`
// (postpack) writes it back wherever the map is beside the file, so the workspace keeps
// its maps for debugging after a pack. It reports on stderr (stdout is `npm pack --json`).
// Usage: node scripts/pack-source-maps.mjs strip|restore
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(pkg, 'dist', 'src');
const COMMENT = /\n\/\/# sourceMappingURL=[^\n]*\n?$/;

/** Every compiled file a map may belong to, under `dir`. */
function* compiled(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* compiled(p);
    else if (/\.(js|d\.ts)$/.test(entry.name)) yield p;
  }
}

const mode = process.argv[2];
if (mode !== 'strip' && mode !== 'restore') {
  process.stderr.write('usage: node scripts/pack-source-maps.mjs strip|restore\n');
  process.exit(2);
}
if (!existsSync(dist)) {
  process.stderr.write(`pack-source-maps: ${dist} is missing; run 'npm run build' first\n`);
  process.exit(1);
}
let changed = 0;
for (const file of compiled(dist)) {
  const text = readFileSync(file, 'utf8');
  if (mode === 'strip') {
    if (!COMMENT.test(text)) continue;
    writeFileSync(file, `${text.replace(COMMENT, '')}\n`);
  } else {
    const map = `${path.basename(file)}.map`;
    if (COMMENT.test(text) || !existsSync(path.join(path.dirname(file), map))) continue;
    writeFileSync(file, `${text.replace(/\n$/, '')}\n//# sourceMappingURL=${map}`);
  }
  changed += 1;
}
process.stderr.write(
  `pack-source-maps: ${mode === 'strip' ? 'stripped' : 'restored'} ${changed} files\n`,
);
