/**
 * Every migration of schema `peak`, in version order: the host's own (`0001-foundation`,
 * `0013-access`, `0014-identity-keys`) and each module's (a subsystem keeps its migrations in
 * its `server/migrations/`). Versions are global, never reused or edited once released; a
 * new one takes the number assigned to it (gaps are allowed while the numbers below it have
 * not landed).
 */
import type { Migration } from '../migrator.js';
import type { PeakModule } from '../peak-module.js';
import { foundation } from './0001-foundation.js';
import { access } from './0013-access.js';
import { identityKeys } from './0014-identity-keys.js';

/** The host's migrations plus `modules`' migrations, oldest first; refuses a duplicate version. */
export function collectMigrations(modules: readonly PeakModule[]): readonly Migration[] {
  const all = [foundation, access, identityKeys, ...modules.flatMap((m) => m.migrations)].sort(
    (a, b) => a.version - b.version,
  );
  for (let i = 1; i < all.length; i++) {
    if (all[i]!.version === all[i - 1]!.version) {
      throw new Error(
        `two migrations share version ${all[i]!.version} (${all[i - 1]!.name}, ${all[i]!.name}): give the newer one the next free number`,
      );
    }
  }
  return all;
}
