/**
 * The forced end of a node, for a second Ctrl-C: what a graceful stop would still have
 * done, done at once and synchronously, so the process can exit right after without
 * leaving its embedded PostgreSQL running (it is in its own process group, so the
 * terminal's signal never reached it) or its server lock behind.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DataFiles } from './data-folder.js';

/** What {@link stopAtOnce} needs of a node (a PeakServer has both). */
export interface StoppableAtOnce {
  readonly info: { readonly dataDir: string };
  /** The embedded postmaster's pid while it runs; undefined with an external PostgreSQL. */
  readonly postgresPid: number | undefined;
}

/**
 * Stops the node's embedded PostgreSQL with an immediate shutdown (SIGQUIT: the postmaster
 * ends its backends and exits; crash recovery replays the WAL on the next start) and
 * removes the data folder's lock when this process holds it. Never throws.
 */
export function stopAtOnce(node: StoppableAtOnce): void {
  const pid = node.postgresPid;
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
  const lock = path.join(node.info.dataDir, DataFiles.lock);
  try {
    if (Number.parseInt(readFileSync(lock, 'utf8'), 10) === process.pid) rmSync(lock);
  } catch {
    // no lock, or not ours
  }
}
