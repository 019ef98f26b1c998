/**
 * A tiny, safe expression language for routing rules, e.g. `userId % 100 < 10` or
 * `region == "cn" && tags.canary != "true"`. Rules are data (pushed by the config center),
 * so they are parsed, never `eval`ed: numbers, strings, `true/false`, names (dotted paths
 * into the call's variables), an index for names that are not identifiers
 * (`tags["x-gray"]`), `+ - * / %`, comparisons, `! && ||`, parentheses, and one function,
 * `hash(x)`: the 32-bit FNV-1a hash of `x`'s UTF-8 text (see {@link hashKey}), the same in
 * every process, so `hash(buyerId) % 100 < 20` puts a stable fifth of the buyers on a route.
 */
import { InvalidArgumentError } from '../core/errors.js';

type Node =
  | { k: 'lit'; v: unknown }
  | { k: 'var'; path: string[] }
  | { k: 'index'; a: Node; i: Node }
  | { k: 'hash'; a: Node }
  | { k: 'not'; a: Node }
  | { k: 'neg'; a: Node }
  | { k: 'bin'; op: string; a: Node; b: Node };

/** A compiled condition: evaluate it against the call's variables. */
export type Condition = (vars: Readonly<Record<string, unknown>>) => boolean;

const TOKEN =
  /\s*(?:(\d+(?:\.\d+)?)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)|(==|!=|<=|>=|&&|\|\||[-+*/%<>!()[\]]))/y;

/** The functions a condition may call. */
const FUNCTIONS = ['hash'] as const;

/**
 * The 32-bit FNV-1a hash of a value's UTF-8 text (numbers and booleans as `String(v)`
 * writes them), an unsigned integer; `NaN` for a missing value (`undefined` or `null`),
 * so `hash(k) % 100 < N` holds for no call without the key. Deterministic across
 * processes and machines.
 */
export function hashKey(value: unknown): number {
  if (value === undefined || value === null) return Number.NaN;
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(
    typeof value === 'object' ? JSON.stringify(value) : String(value),
    'utf8',
  )) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const PRECEDENCE: Record<string, number> = {
  '||': 1,
  '&&': 2,
  '==': 3,
  '!=': 3,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  '+': 5,
  '-': 5,
  '*': 6,
  '/': 6,
  '%': 6,
};

function tokenize(source: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < source.length) {
    if (/^\s*$/.test(source.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(source);
    if (m === null) {
      throw new InvalidArgumentError(
        `condition '${source}': unexpected character at position ${at}: '${source.slice(at).trim()[0]}'`,
        { details: { input: source, position: at } },
      );
    }
    tokens.push(m[0].trim());
    at = TOKEN.lastIndex;
  }
  return tokens;
}

/** Parses a condition; throws PEAK_INVALID_ARGUMENT naming the problem. */
export function compileCondition(source: string): Condition {
  if (source.length > 1000) {
    throw new InvalidArgumentError('a condition is limited to 1000 characters', {
      details: { input: 'when' },
    });
  }
  const tokens = tokenize(source);
  let pos = 0;
  const fail = (what: string): never => {
    throw new InvalidArgumentError(`condition '${source}': ${what}`, {
      details: { input: source },
    });
  };
  const primary = (): Node => {
    const t = tokens[pos++];
    if (t === undefined) return fail('ends too early');
    if (t === '(') {
      const inner = expr(0);
      if (tokens[pos++] !== ')') fail("missing ')'");
      return inner;
    }
    if (t === '!') return { k: 'not', a: postfix() };
    if (t === '-') return { k: 'neg', a: postfix() };
    if (/^\d/.test(t)) return { k: 'lit', v: Number(t) };
    if (t.startsWith('"') || t.startsWith("'")) {
      return { k: 'lit', v: t.slice(1, -1).replace(/\\(.)/g, '$1') };
    }
    if (t === 'true' || t === 'false') return { k: 'lit', v: t === 'true' };
    if (/^[A-Za-z_$]/.test(t)) {
      if (tokens[pos] !== '(') return { k: 'var', path: t.split('.') };
      if (!(FUNCTIONS as readonly string[]).includes(t))
        fail(`unknown function '${t}' (known: ${FUNCTIONS.join(', ')})`);
      pos++;
      const arg = expr(0);
      if (tokens[pos++] !== ')') fail(`missing ')' after the argument of ${t}`);
      return { k: 'hash', a: arg };
    }
    return fail(`unexpected '${t}'`);
  };
  const postfix = (): Node => {
    let node = primary();
    while (tokens[pos] === '[') {
      pos++;
      const i = expr(0);
      if (tokens[pos++] !== ']') fail("missing ']'");
      node = { k: 'index', a: node, i };
    }
    return node;
  };
  const expr = (min: number): Node => {
    let left = postfix();
    for (;;) {
      const op = tokens[pos];
      const prec = op === undefined ? undefined : PRECEDENCE[op];
      if (op === undefined || prec === undefined || prec <= min) return left;
      pos++;
      const right = expr(prec);
      left = { k: 'bin', op, a: left, b: right };
    }
  };
  const root = expr(0);
  if (pos !== tokens.length) fail(`unexpected '${tokens[pos]}'`);
  return (vars) => Boolean(evaluate(root, vars));
}

function lookup(vars: Readonly<Record<string, unknown>>, path: string[]): unknown {
  let value: unknown = vars;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function num(v: unknown): number {
  return typeof v === 'number'
    ? v
    : typeof v === 'string' && v.trim() !== ''
      ? Number(v)
      : Number.NaN;
}

function evaluate(node: Node, vars: Readonly<Record<string, unknown>>): unknown {
  switch (node.k) {
    case 'lit':
      return node.v;
    case 'var':
      return lookup(vars, node.path);
    case 'index': {
      const o = evaluate(node.a, vars);
      const key = String(evaluate(node.i, vars));
      return typeof o === 'object' && o !== null && Object.hasOwn(o, key)
        ? (o as Record<string, unknown>)[key]
        : undefined;
    }
    case 'hash':
      return hashKey(evaluate(node.a, vars));
    case 'not':
      return !evaluate(node.a, vars);
    case 'neg':
      return -num(evaluate(node.a, vars));
    case 'bin': {
      if (node.op === '&&')
        return Boolean(evaluate(node.a, vars)) && Boolean(evaluate(node.b, vars));
      if (node.op === '||')
        return Boolean(evaluate(node.a, vars)) || Boolean(evaluate(node.b, vars));
      const a = evaluate(node.a, vars);
      const b = evaluate(node.b, vars);
      switch (node.op) {
        case '==':
          return typeof a === 'number' || typeof b === 'number'
            ? num(a) === num(b)
            : String(a) === String(b);
        case '!=':
          return typeof a === 'number' || typeof b === 'number'
            ? num(a) !== num(b)
            : String(a) !== String(b);
        case '<':
          return num(a) < num(b);
        case '<=':
          return num(a) <= num(b);
        case '>':
          return num(a) > num(b);
        case '>=':
          return num(a) >= num(b);
        case '+':
          return typeof a === 'string' || typeof b === 'string' ? `${a}${b}` : num(a) + num(b);
        case '-':
          return num(a) - num(b);
        case '*':
          return num(a) * num(b);
        case '/':
          return num(a) / num(b);
        case '%':
          return num(a) % num(b);
        default:
          return undefined;
      }
    }
  }
}
