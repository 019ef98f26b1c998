/**
 * A strict parser of the Prometheus text exposition format (0.0.4), written from the
 * format's specification: every line must be a comment, a `# HELP`/`# TYPE` line or a
 * well-formed sample; names, label syntax, escapes, values and timestamps are checked;
 * a family's TYPE must come before its samples and appear once; samples of one family
 * must be contiguous. Used to check every /metrics endpoint Peakware serves.
 */
import { InvalidArgumentError } from '../core/errors.js';

/** One parsed sample. */
export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The result of {@link parsePrometheusText}. */
export interface ParsedExposition {
  /** Declared types by family name. */
  types: Map<string, string>;
  /** Every sample, in order. */
  samples: ParsedSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES = ['_total', '_sum', '_count', '_bucket', '_created'];

function fail(lineNo: number, line: string, why: string): never {
  throw new InvalidArgumentError(`Prometheus text line ${lineNo}: ${why}: ${line.slice(0, 200)}`);
}

function parseValue(text: string, lineNo: number, line: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    fail(lineNo, line, `bad value '${text}'`);
  return Number(text);
}

function familyOf(name: string, types: Map<string, string>): string {
  if (types.has(name)) return name;
  for (const s of SUFFIXES) {
    if (name.endsWith(s) && types.has(name.slice(0, -s.length))) return name.slice(0, -s.length);
  }
  return name;
}

/** Parses `text`; throws {@link InvalidArgumentError} naming the first bad line. */
export function parsePrometheusText(text: string): ParsedExposition {
  if (text.length > 0 && !text.endsWith('\n')) {
    throw new InvalidArgumentError('Prometheus text must end with a newline');
  }
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: ParsedSample[] = [];
  const finished = new Set<string>();
  let current: string | undefined;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, i) => {
    const lineNo = i + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (m === null) return; // an ordinary comment
      const [, what, name = '', rest = ''] = m;
      if (!NAME.test(name) || NAME.exec(name)?.[0] !== name) fail(lineNo, line, 'bad metric name');
      if (what === 'TYPE') {
        if (!TYPES.has(rest.trim())) fail(lineNo, line, `unknown type '${rest}'`);
        if (types.has(name)) fail(lineNo, line, 'second TYPE line for the family');
        if (samples.some((s) => familyOf(s.name, types) === name || s.name === name)) {
          fail(lineNo, line, 'TYPE after the family’s samples');
        }
        types.set(name, rest.trim());
      } else {
        if (helps.has(name)) fail(lineNo, line, 'second HELP line for the family');
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) fail(lineNo, line, 'bad escape in HELP');
        helps.add(name);
      }
      return;
    }
    const nm = NAME.exec(line);
    if (nm === null) fail(lineNo, line, 'a sample must start with a metric name');
    const name = nm[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const lm = LABEL.exec(line.slice(pos));
        if (lm === null) fail(lineNo, line, 'bad label name');
        const label = lm[0];
        pos += label.length;
        if (line[pos] !== '=' || line[pos + 1] !== '"')
          fail(lineNo, line, `label ${label}: expected ="`);
        pos += 2;
        let value = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) fail(lineNo, line, 'unterminated label value');
          pos++;
          if (c === '"') break;
          if (c === '\\') {
            const e = line[pos];
            pos++;
            if (e === '\\') value += '\\';
            else if (e === '"') value += '"';
            else if (e === 'n') value += '\n';
            else fail(lineNo, line, `bad escape \\${e ?? ''} in label ${label}`);
          } else value += c;
        }
        if (Object.hasOwn(labels, label)) fail(lineNo, line, `label ${label} twice`);
        labels[label] = value;
        if (line[pos] === ',') pos++;
        else if (line[pos] !== '}') fail(lineNo, line, 'expected , or } after a label');
      }
    }
    if (line[pos] !== ' ' && line[pos] !== '\t')
      fail(lineNo, line, 'expected a space before the value');
    const parts = line
      .slice(pos)
      .trim()
      .split(/[ \t]+/);
    if (parts.length < 1 || parts.length > 2)
      fail(lineNo, line, 'expected a value and an optional timestamp');
    const value = parseValue(parts[0] ?? '', lineNo, line);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail(lineNo, line, 'bad timestamp');
    const family = familyOf(name, types);
    if (family !== current) {
      if (finished.has(family)) fail(lineNo, line, `samples of ${family} are not contiguous`);
      if (current !== undefined) finished.add(current);
      current = family;
    }
    const type = types.get(family);
    if (type === 'counter' && value < 0) fail(lineNo, line, 'a counter cannot be negative');
    samples.push({ name, labels, value });
  });
  return { types, samples };
}
