/**
 * The small part of YAML an app file uses: block mappings, block sequences (of scalars or
 * of mappings), `# comments`, plain, single- and double-quoted scalars, numbers, booleans
 * and `null`, and flow lists of scalars (`[a, b]`). Anchors, multi-line strings, flow
 * mappings and documents are refused with the line they are on, so nothing is silently
 * misread; a full YAML parser is not worth a dependency of the SDK for this.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';

/** A parsed YAML value. */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [k: string]: YamlValue };

interface Line {
  indent: number;
  text: string;
  no: number;
}

function fail(line: number, reason: string): never {
  throw new PeakError(ErrorCodes.SCALE_INVALID, `line ${line}: ${reason}`, {
    details: { line },
  });
}

function stripComment(s: string): string {
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

function scalar(raw: string, no: number): YamlValue {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) fail(no, 'an unterminated "string"');
    try {
      return JSON.parse(s) as string;
    } catch {
      fail(no, `${s} is not one "quoted string" (quote the whole value with '...')`);
    }
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) fail(no, "an unterminated 'string'");
    return s.slice(1, -1).replaceAll("''", "'");
  }
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) fail(no, 'a flow list must end on its line with ]');
    const inner = s.slice(1, -1).trim();
    return inner === '' ? [] : inner.split(',').map((p) => scalar(p, no));
  }
  if (/^[&*!|>{]/.test(s))
    fail(no, `'${s[0]}' (anchors, tags, block strings, flow maps) is not supported`);
  return s;
}

/** Parses the YAML subset above; throws PEAK_SCALE_INVALID naming the line. */
export function parseYamlSubset(source: string): YamlValue {
  const lines: Line[] = [];
  for (const [i, raw] of source.split(/\r?\n/).entries()) {
    if (raw.includes('\t')) fail(i + 1, 'tabs are not allowed for indentation');
    const text = stripComment(raw).trimEnd();
    if (text.trim() === '' || text.trim() === '---') continue;
    lines.push({ indent: text.length - text.trimStart().length, text: text.trim(), no: i + 1 });
  }
  if (lines.length === 0) return null;
  const [value, next] = block(lines, 0, lines[0]!.indent);
  if (next < lines.length) fail(lines[next]!.no, 'unexpected indentation');
  return value;
}

function block(lines: Line[], at: number, indent: number): [YamlValue, number] {
  const first = lines[at]!;
  if (first.text.startsWith('- ') || first.text === '-') return sequence(lines, at, indent);
  return mapping(lines, at, indent);
}

function sequence(lines: Line[], at: number, indent: number): [YamlValue, number] {
  const out: YamlValue[] = [];
  let i = at;
  while (i < lines.length && lines[i]!.indent === indent) {
    const l = lines[i]!;
    if (!(l.text.startsWith('- ') || l.text === '-')) fail(l.no, 'expected a list item (- ...)');
    const rest = l.text.slice(1).trimStart();
    if (rest === '') {
      const child = lines[i + 1];
      if (child === undefined || child.indent <= indent) {
        out.push(null);
        i++;
        continue;
      }
      const [v, n] = block(lines, i + 1, child.indent);
      out.push(v);
      i = n;
      continue;
    }
    if (/^[^'"[\s][^:]*:(\s|$)/.test(rest)) {
      // A mapping starting on the item's line: its keys sit at the item's indent + 2.
      const inner = indent + (l.text.length - rest.length);
      const sub: Line[] = [{ indent: inner, text: rest, no: l.no }];
      let j = i + 1;
      while (j < lines.length && lines[j]!.indent >= inner) sub.push(lines[j++]!);
      const [v, n] = mapping(sub, 0, inner);
      if (n < sub.length) fail(sub[n]!.no, 'unexpected indentation');
      out.push(v);
      i = j;
      continue;
    }
    out.push(scalar(rest, l.no));
    i++;
  }
  if (i < lines.length && lines[i]!.indent > indent) fail(lines[i]!.no, 'unexpected indentation');
  return [out, i];
}

function mapping(lines: Line[], at: number, indent: number): [YamlValue, number] {
  const out: { [k: string]: YamlValue } = {};
  let i = at;
  while (i < lines.length && lines[i]!.indent === indent) {
    const l = lines[i]!;
    const m = /^("[^"]*"|'[^']*'|[^:]+?)\s*:(?:\s+(.*))?$/.exec(l.text);
    if (m === null) fail(l.no, `expected 'key: value', got '${l.text}'`);
    const key = String(scalar(m[1]!, l.no));
    if (Object.hasOwn(out, key)) fail(l.no, `key '${key}' appears twice`);
    const rest = m[2];
    if (rest !== undefined && rest.trim() !== '') {
      out[key] = scalar(rest, l.no);
      i++;
      continue;
    }
    const child = lines[i + 1];
    if (child !== undefined && child.indent > indent) {
      const [v, n] = block(lines, i + 1, child.indent);
      out[key] = v;
      i = n;
    } else if (child !== undefined && child.indent === indent && child.text.startsWith('-')) {
      // A list may sit at its key's own indent.
      const [v, n] = sequence(lines, i + 1, indent);
      out[key] = v;
      i = n;
    } else {
      out[key] = null;
      i++;
    }
  }
  if (i < lines.length && lines[i]!.indent > indent) fail(lines[i]!.no, 'unexpected indentation');
  return [out, i];
}
