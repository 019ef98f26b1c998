/**
 * A tiny, safe expression language for routing rules, e.g. `userId % 100 < 10` or
 * `region == "cn" && tags.canary != "true"`. Rules are data (pushed by the config center),
 * so they are parsed, never `eval`ed: numbers, strings, `true/false`, names (dotted paths
 * into the call's variables), `+ - * / %`, comparisons, `! && ||` and parentheses.
 */
import { InvalidArgumentError } from '../core/errors.js';

type Node =
  | { k: 'lit'; v: unknown }
  | { k: 'var'; path: string[] }
  | { k: 'not'; a: Node }
  | { k: 'neg'; a: Node }
  | { k: 'bin'; op: string; a: Node; b: Node };

/** A compiled condition: evaluate it against the call's variables. */
export type Condition = (vars: Readonly<Record<string, unknown>>) => boolean;

const TOKEN =
  /\s*(?:(\d+(?:\.\d+)?)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)|(==|!=|<=|>=|&&|\|\||[-+*/%<>!()]))/y;

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
    if (t === '!') return { k: 'not', a: primary() };
    if (t === '-') return { k: 'neg', a: primary() };
    if (/^\d/.test(t)) return { k: 'lit', v: Number(t) };
    if (t.startsWith('"') || t.startsWith("'")) {
      return { k: 'lit', v: t.slice(1, -1).replace(/\\(.)/g, '$1') };
    }
    if (t === 'true' || t === 'false') return { k: 'lit', v: t === 'true' };
    if (/^[A-Za-z_$]/.test(t)) return { k: 'var', path: t.split('.') };
    return fail(`unexpected '${t}'`);
  };
  const expr = (min: number): Node => {
    let left = primary();
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
