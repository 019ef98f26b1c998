/**
 * A cache's keys and tags as they are stored: any well-formed text of 1-1024 characters (a
 * lone UTF-16 surrogate is refused: Redis would see U+FFFD, and two keys would meet), with
 * `shadow:` in front for stress traffic (`peak-stress` in the call context), so a stress
 * test never reads or writes a real key.
 */
import { currentContext } from '../core/context.js';
import { InvalidArgumentError } from '../core/errors.js';

// Fast pre-check (any UTF-16 surrogate unit), then the exact one (a surrogate not in a pair).
const ANY_SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /\p{Cs}/u;
const MAX_KEY_LENGTH = 1024;

/** The stored form of `key` in cache `cache`; throws PEAK_INVALID_ARGUMENT for a bad key. */
export function storedKey(cache: string, key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidArgumentError(
      `cache ${cache}: key must be a string of 1-${MAX_KEY_LENGTH} characters (got ${typeof key === 'string' ? `${key.length}` : typeof key})`,
      { details: { input: 'key' } },
    );
  }
  // A lone surrogate would be sent to Redis as U+FFFD, so two different keys would meet.
  if (ANY_SURROGATE.test(key) && LONE_SURROGATE.test(key)) {
    throw new InvalidArgumentError(
      `cache ${cache}: key ${JSON.stringify(key)} holds a lone UTF-16 surrogate; use well-formed text`,
      { details: { input: 'key' } },
    );
  }
  return currentContext()?.stress === true ? `shadow:${key}` : key;
}

/** The stored form of each tag; throws PEAK_INVALID_ARGUMENT for a bad one. */
export function storedTags(cache: string, tags: readonly string[] | undefined): string[] {
  return (tags ?? []).map((t) => {
    const k = currentContext()?.stress === true ? `shadow:${t}` : t;
    if (k.length === 0 || k.length > MAX_KEY_LENGTH || LONE_SURROGATE.test(k)) {
      throw new InvalidArgumentError(`cache ${cache}: tag ${JSON.stringify(t)} is invalid`, {
        details: { input: 'tags' },
      });
    }
    return k;
  });
}
