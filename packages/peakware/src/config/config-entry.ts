/**
 * What an instance sees of one config item: the released value, or the gray value when the
 * instance is in the gray release's audience (its id, or one of its tags, is listed).
 */

/** One item as delivered to an instance. */
export interface ConfigEntry {
  group: string;
  key: string;
  /** The released version (for a gray value: the version it will replace). */
  version: number;
  format: 'json' | 'text';
  /** The value as published (JSON text for `json`). */
  value: string;
  /** True when this is a gray value not yet released to everyone. */
  gray: boolean;
  /**
   * True (only in what a watch listener is called with) when the item was removed
   * (`peak config rm`): `version`, `format` and `value` are its last ones, and the source
   * no longer has it.
   */
  removed?: boolean;
}

/** The parts of an item {@link effectiveEntry} needs. */
export interface EntrySource {
  item: { group: string; key: string; version: number; format: 'json' | 'text'; value: string };
  gray: {
    format: 'json' | 'text';
    value: string;
    tags: string[];
    instanceIds: string[];
  } | null;
}

/** The entry one instance (by id and tags) should see. */
export function effectiveEntry(
  source: EntrySource,
  instanceId: string | undefined,
  tags: ReadonlySet<string>,
): ConfigEntry {
  const { item, gray } = source;
  const inGray =
    gray !== null &&
    ((instanceId !== undefined && gray.instanceIds.includes(instanceId)) ||
      gray.tags.some((t) => tags.has(t)));
  return inGray && gray !== null
    ? {
        group: item.group,
        key: item.key,
        version: item.version,
        format: gray.format,
        value: gray.value,
        gray: true,
      }
    : {
        group: item.group,
        key: item.key,
        version: item.version,
        format: item.format,
        value: item.value,
        gray: false,
      };
}

/** `group/key`, the name the SDK uses for an item of its app. */
export function entryName(group: string, key: string): string {
  return `${group}/${key}`;
}
