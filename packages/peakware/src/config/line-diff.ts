/**
 * A line diff (longest common subsequence) for `peak config diff`: small values, so the
 * O(n·m) table is fine; inputs over 2,000 lines each fall back to "all removed, all added".
 */

/** One diff line: ' ' kept, '-' only in the old value, '+' only in the new one. */
export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

/** The lines that turn `a` into `b`. */
export function lineDiff(a: string, b: string): DiffLine[] {
  const x = a.split('\n');
  const y = b.split('\n');
  if (x.length > 2000 || y.length > 2000) {
    return [
      ...x.map((text) => ({ op: '-' as const, text })),
      ...y.map((text) => ({ op: '+' as const, text })),
    ];
  }
  const n = x.length;
  const m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] =
        x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ op: ' ', text: x[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', text: x[i++]! });
    else out.push({ op: '+', text: y[j++]! });
  }
  while (i < n) out.push({ op: '-', text: x[i++]! });
  while (j < m) out.push({ op: '+', text: y[j++]! });
  return out;
}
