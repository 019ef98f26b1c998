/**
 * Test support: the credential SDK clients send. A deployed service gets its app's
 * credential as PEAK_CREDENTIAL (the default of every control-plane client); a test does
 * the same with the server's local app (every SDK grant), so the clients it builds and the
 * fixture processes it spawns (they inherit the environment) need no code for it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PeakServer } from '../../src/server/index.js';

/** Sets PEAK_CREDENTIAL of this process to `server`'s local app credential; returns it. */
export function useLocalCredential(server: PeakServer): string {
  const credential = server.credential();
  process.env.PEAK_CREDENTIAL = credential;
  return credential;
}

/**
 * Sets PEAK_CREDENTIAL of this process to the local app credential a `peak server` process
 * wrote into its data folder (`<data>/credentials/local`); returns it.
 */
export async function useDataFolderCredential(dataDir: string): Promise<string> {
  const credential = (await readFile(path.join(dataDir, 'credentials', 'local'), 'utf8')).trim();
  process.env.PEAK_CREDENTIAL = credential;
  return credential;
}

/** The `authorization` header of PEAK_CREDENTIAL, for raw `fetch` calls (none when unset). */
export function bearer(): Record<string, string> {
  const credential = process.env.PEAK_CREDENTIAL;
  return credential === undefined ? {} : { authorization: `Bearer ${credential}` };
}
