/**
 * Authority rules (Sentinel's AuthoritySlot): allow or deny a resource by caller app. A
 * call without an origin is never refused here: there is nothing to match.
 */
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import type { ProcessorSlot } from './processor-slot.js';

/** The slot that checks every authority rule of the resource. */
export class AuthoritySlot implements ProcessorSlot {
  entry(entry: Entry): void {
    const rules = entry.node.rules.authority;
    if (rules.length === 0 || entry.origin === '') return;
    for (const rule of rules) {
      const listed = rule.origins.includes(entry.origin);
      if ((rule.strategy === 'allow' && !listed) || (rule.strategy === 'deny' && listed)) {
        throw BlockError.create(
          'authority',
          entry.resource,
          entry.origin,
          `caller '${entry.origin}' is ${rule.strategy === 'allow' ? 'not on the allow list' : 'on the deny list'}`,
          rule,
        );
      }
    }
  }

  exit(): void {}
}
