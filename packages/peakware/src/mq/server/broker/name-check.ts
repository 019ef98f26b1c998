/** Topic, group and producer-group names as the broker accepts them. */
import { InvalidArgumentError } from '../../../core/errors.js';
import { NAME_PATTERN } from '../../message-types.js';

/** Checks a topic or group name. */
export function checkName(kind: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name.startsWith('%')) {
    throw new InvalidArgumentError(
      `${kind} name ${JSON.stringify(name)} is not valid: use 1-127 letters, digits, '.', '_' or '-'`,
      { details: { input: kind } },
    );
  }
  return name;
}
