/**
 * Authority rules (Sentinel's AuthoritySlot): allow or deny a resource by caller app. A
 * call without an origin (over RPC: a caller without a verified identity) is not on any
 * list: an allow rule refuses it, a deny rule lets it pass. Sentinel lets it pass both;
 * here an allow list means "only these", so an unknown caller cannot slip through by
 * leaving its name out.
 */
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import type { ProcessorSlot } from './processor-slot.js';

/** The slot that checks every authority rule of the resource. */
export class AuthoritySlot implements ProcessorSlot {
  entry(entry: Entry): void {
    const rules = entry.node.rules.authority;
    if (rules.length === 0) return;
    for (const rule of rules) {
      const listed = entry.origin !== '' && rule.origins.includes(entry.origin);
      if ((rule.strategy === 'allow' && !listed) || (rule.strategy === 'deny' && listed)) {
        throw BlockError.create(
          'authority',
          entry.resource,
          entry.origin,
          entry.origin === ''
            ? 'the caller is unknown (no verified identity) and only the allow list may call'
            : `caller '${entry.origin}' is ${rule.strategy === 'allow' ? 'not on the allow list' : 'on the deny list'}`,
          rule,
        );
      }
    }
  }

  exit(): void {}
}
