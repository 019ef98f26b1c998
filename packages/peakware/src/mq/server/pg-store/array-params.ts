/**
 * How message columns travel as array parameters: one statement inserts a whole batch with
 * `unnest` of arrays, bodies packed into one binary parameter.
 */

/**
 * Message bodies as one binary parameter plus 1-based starts and lengths. node-pg sends a
 * Buffer parameter in binary, but a bytea[] as escaped hex text: twice the bytes on the
 * socket, a per-byte escape in JavaScript and a parse in PostgreSQL.
 */
export function packBodies(bodies: readonly Buffer[]): {
  blob: Buffer;
  starts: number[];
  lengths: number[];
} {
  const starts: number[] = new Array(bodies.length);
  const lengths: number[] = new Array(bodies.length);
  let at = 1;
  for (let i = 0; i < bodies.length; i++) {
    const n = bodies[i]!.length;
    starts[i] = at;
    lengths[i] = n;
    at += n;
  }
  return { blob: Buffer.concat(bodies as Buffer[]), starts, lengths };
}

/** Keys as a JSON array, or null for none (the common case, no per-row parse). */
export function keysParam(keys: readonly string[]): string | null {
  return keys.length === 0 ? null : JSON.stringify(keys);
}

/** Properties as JSON, or null for none. */
export function propsParam(props: Record<string, string>): string | null {
  for (const _ in props) return JSON.stringify(props);
  return null;
}

/** SQL for a keys parameter `k` (jsonb or null) as text[]. */
export const KEYS_SQL = (k: string) =>
  `CASE WHEN ${k} IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(${k})) END`;
