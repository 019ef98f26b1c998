/**
 * The optional dependencies a `peak` command needs. `npm install peakware --omit=optional`
 * installs the SDK alone; a command that runs the control plane checks its packages first,
 * so the user learns every missing one in one error instead of one a run.
 */
import { MissingDependencyError } from '../core/errors.js';

/** What `peak server` loads (the host, its routes and workers, and logging). */
export const CONTROL_PLANE_PACKAGES = [
  'fastify',
  'pg',
  'pino',
  '@sinclair/typebox',
  'ajv',
  'msgpackr',
  'hdr-histogram-js',
] as const;

/** The packages of `names` this installation cannot resolve. */
export function missingPackages(names: readonly string[]): string[] {
  return names.filter((name) => {
    try {
      import.meta.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

/** Throws a {@link MissingDependencyError} naming every package of `names` not installed. */
export function requirePackages(command: string, names: readonly string[]): void {
  const missing = missingPackages(names);
  if (missing.length === 0) return;
  throw new MissingDependencyError(
    `'${command}' needs ${missing.map((p) => `'${p}'`).join(', ')}, optional dependencies of peakware that are not installed (npm install --omit=optional leaves them out): run 'npm install ${missing.join(' ')}', or install peakware without --omit=optional`,
    { details: { packages: missing, package: missing[0], command } },
  );
}
