#!/usr/bin/env node
// The `peak` executable. A checked-in shim, so npm links the bin at install time even
// before `dist/` is built (npm links a workspace's bin only when its target exists; without
// this, `npx peak` right after `npm install` in a clone asked the registry for a package
// named `peak`). It loads the compiled CLI, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write(
    `peak: error: the CLI is not built (${fileURLToPath(cli)} is missing); run 'npm run build' in the repository first [PEAK_USAGE]\n`,
  );
  process.exit(2);
}
await import(cli.href);
