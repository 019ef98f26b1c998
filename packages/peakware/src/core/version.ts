/** The version of the installed `peakware` package, read once from its package.json. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // dist/src/core/version.js → package root is three levels up.
  const url = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

/** The `peakware` package version, e.g. `0.1.0`. */
export const PEAKWARE_VERSION: string = readVersion();
