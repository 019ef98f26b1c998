/** The `--yes` a destructive command asks for, so a stray command line deletes nothing. */
import { UsageError } from '../core/errors.js';
import type { OptionSpec } from './command.js';

/** The option that confirms a destructive command. */
export const YES_OPTION: Record<string, OptionSpec> = {
  yes: { type: 'boolean', short: 'y', description: 'confirm: this cannot be undone' },
};

/** Fails with a usage error saying what would be lost unless `--yes` was given. */
export function requireYes(values: Record<string, unknown>, what: string, command: string): void {
  if (values.yes === true) return;
  throw new UsageError(`${what} cannot be undone; run '${command} --yes' to confirm`, {
    details: { input: '--yes' },
  });
}
