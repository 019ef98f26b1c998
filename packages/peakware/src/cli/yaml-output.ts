/**
 * `-o yaml`: the value a command prints under `--json`, written as a YAML 1.2 document
 * (block mappings and sequences, as kubectl prints). Strings that could read as something
 * else (numbers, booleans, null, dates, text with `: ` or ` #`, leading indicators, leading
 * or trailing space, line breaks) are double-quoted with JSON's escapes, which YAML's
 * double-quoted scalars share, so every document parses back to the same JSON value.
 */

const RESERVED = new Set([
  '',
  '~',
  'null',
  'true',
  'false',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'n',
  '.nan',
  '.inf',
  '-.inf',
  '+.inf',
  '<<',
]);

/** True when `s` can be written plain: it reads back as this same string. */
function plain(s: string): boolean {
  if (RESERVED.has(s.toLowerCase())) return false;
  if (!/^[A-Za-z0-9_./$^()=+-][A-Za-z0-9_ ./@$%^&()=+\-:,'"<>!~;?*]*$/.test(s)) return false;
  if (s.endsWith(' ') || s.endsWith(':') || s.includes(': ') || s.includes(' #')) return false;
  // Anything a YAML reader could take for a number, a date or a time.
  if (/^[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?$/.test(s) && /\d/.test(s)) return false;
  if (/^[-+]?0[xob][\da-fA-F_]+$/.test(s) || /^\d{4}-\d\d?-\d\d?/.test(s) || /^\d+:\d/.test(s))
    return false;
  if (s.startsWith('-') && (s.length === 1 || s[1] === ' ')) return false;
  return true;
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '.nan';
    if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  const s = v instanceof Date ? v.toISOString() : String(v);
  return plain(s) ? s : JSON.stringify(s);
}

function key(k: string): string {
  return plain(k) ? k : JSON.stringify(k);
}

function isEmpty(v: unknown): boolean {
  return Array.isArray(v) ? v.length === 0 : Object.keys(v as object).length === 0;
}

function block(v: unknown, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isContainer(item) && !isEmpty(item)) {
        const inner: string[] = [];
        block(item, `${indent}  `, inner);
        // The first line of the item goes after the dash.
        out.push(`${indent}- ${inner[0]!.slice(indent.length + 2)}`, ...inner.slice(1));
      } else out.push(`${indent}- ${inline(item)}`);
    }
    return;
  }
  for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
    if (item === undefined) continue;
    if (isContainer(item) && !isEmpty(item)) {
      out.push(`${indent}${key(k)}:`);
      // Sequences under a key sit at the key's indentation, as kubectl writes them.
      block(item, Array.isArray(item) ? indent : `${indent}  `, out);
    } else out.push(`${indent}${key(k)}: ${inline(item)}`);
  }
}

function isContainer(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !(v instanceof Date);
}

function inline(v: unknown): string {
  if (Array.isArray(v) && v.length === 0) return '[]';
  if (isContainer(v) && isEmpty(v)) return '{}';
  return scalar(v);
}

/** `value` (a JSON-like value) as one YAML document, ending with a newline. */
export function toYaml(value: unknown): string {
  const json = JSON.parse(
    JSON.stringify(value ?? null, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
  );
  if (!isContainer(json) || isEmpty(json)) return `${inline(json)}\n`;
  const out: string[] = [];
  block(json, '', out);
  return `${out.join('\n')}\n`;
}
