/**
 * `npm run bench -- <name> [--json] [--runs N] [--quick]`: runs one benchmark from
 * `benchmarks/<name>.js` and prints a table (or, with `--json`, one JSON object of figures
 * and ratios on stdout; use `npm run -s bench` so npm adds nothing of its own there).
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Benchmark } from './bench.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const available = readdirSync(path.join(here, 'benchmarks'))
  .filter((f) => f.endsWith('.js'))
  .map((f) => f.slice(0, -3))
  .sort();

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

let parsed: ReturnType<typeof parseArgs>;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  fail(`${(err as Error).message}; usage: npm run bench -- <name> [--json] [--runs N] [--quick]`);
}
const name = parsed.positionals[0];
if (parsed.values.help === true || name === undefined) {
  process.stdout.write(
    `usage: npm run bench -- <name> [--json] [--runs N] [--quick]\nbenchmarks: ${available.join(', ')}\n`,
  );
  process.exit(name === undefined && parsed.values.help !== true ? 2 : 0);
}
if (!available.includes(name)) fail(`no benchmark '${name}'; available: ${available.join(', ')}`);
const runsText = parsed.values.runs;
const runs = runsText === undefined ? 5 : Number(runsText);
if (!Number.isInteger(runs) || runs < 1 || runs > 100)
  fail(`--runs must be 1..100, got ${runsText}`);

const mod = (await import(`./benchmarks/${name}.js`)) as { benchmark: Benchmark };
const json = parsed.values.json === true;
const started = Date.now();
const result = await mod.benchmark.run({
  runs,
  quick: parsed.values.quick === true,
  progress: (message) => process.stderr.write(`  ${message}\n`),
});
const meta = {
  benchmark: name,
  date: new Date().toISOString(),
  node: process.version,
  cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
  runs,
  seconds: Math.round((Date.now() - started) / 100) / 10,
};
if (json) {
  process.stdout.write(
    `${JSON.stringify({ ...meta, figures: result.figures, ratios: result.ratios })}\n`,
  );
} else {
  const widths = result.table[0]!.map((_, col) =>
    Math.max(...result.table.map((row) => String(row[col] ?? '').length)),
  );
  process.stdout.write(`\n${name}: ${mod.benchmark.description}\n`);
  process.stdout.write(`${meta.node}, ${meta.cpus}, median of ${runs} runs, ${meta.seconds}s\n\n`);
  result.table.forEach((row, i) => {
    process.stdout.write(
      `  ${row.map((cell, col) => String(cell).padEnd(widths[col]!)).join('  ')}\n`,
    );
    if (i === 0) process.stdout.write(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  });
  process.stdout.write('\nratios:\n');
  for (const [key, value] of Object.entries(result.ratios)) {
    process.stdout.write(`  ${key.padEnd(40)} ${value}\n`);
  }
  for (const note of result.notes ?? []) process.stdout.write(`\nnote: ${note}\n`);
}
