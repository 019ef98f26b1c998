/**
 * `peak trace <traceId>`: one trace as a tree in the terminal (service, kind, duration, a
 * timeline bar, errors, `*` on the critical path). `peak trace` without an id searches
 * (`--service`, `--min-ms`, `--error`, `--tag k=v`, `--since` minutes).
 */
import type { TraceNode, TraceTree } from '../../admin/telemetry-admin.js';
import { UsageError } from '../../core/errors.js';
import type { Command } from '../command.js';
import { adminClient, SERVER_OPTIONS } from '../control-client.js';
import { numberOption } from '../parse.js';

/** A numeric option's value, if given; PEAK_USAGE when it is not a number. */
/** Milliseconds with a sensible number of decimals. */
export function formatMs(us: number): string {
  const ms = us / 1000;
  return ms >= 100
    ? `${ms.toFixed(0)} ms`
    : ms >= 10
      ? `${ms.toFixed(1)} ms`
      : `${ms.toFixed(2)} ms`;
}

/** Renders a trace tree as terminal lines: tree, timeline bar, critical path and errors. */
export function renderTraceTree(tree: TraceTree, barWidth = 24): string[] {
  const critical = new Set(tree.criticalPath);
  let first = Number.POSITIVE_INFINITY;
  const visit = (n: TraceNode) => {
    first = Math.min(first, n.span.startUs);
    for (const c of n.children) visit(c);
  };
  for (const r of tree.roots) visit(r);
  const total = Math.max(1, tree.durationUs);
  const rows: { label: string; rest: string }[] = [];
  const walk = (n: TraceNode, prefix: string, last: boolean, root: boolean) => {
    const s = n.span;
    const branch = root ? '' : last ? '└─ ' : '├─ ';
    const label = `${prefix}${branch}${critical.has(s.spanId) ? '*' : ' '}${s.name}`;
    const from = Math.floor(((s.startUs - first) / total) * barWidth);
    const len = Math.max(1, Math.round((s.durationUs / total) * barWidth));
    const bar =
      `${' '.repeat(Math.min(barWidth - 1, from))}${'█'.repeat(Math.min(len, barWidth - Math.min(barWidth - 1, from)))}`.padEnd(
        barWidth,
      );
    const flags = `${s.stress ? ' [stress]' : ''}${s.error ? ` ERROR ${s.errorMessage ?? ''}` : ''}`;
    rows.push({
      label,
      rest: `${s.service.padEnd(14)} ${s.kind.padEnd(8)} ${formatMs(s.durationUs).padStart(10)} |${bar}|${flags}`,
    });
    const childPrefix = root ? prefix : `${prefix}${last ? '   ' : '│  '}`;
    for (const [i, c] of n.children.entries()) {
      walk(c, childPrefix, i === n.children.length - 1, false);
    }
  };
  for (const r of tree.roots) walk(r, '', true, true);
  const width = Math.min(70, Math.max(...rows.map((r) => r.label.length)));
  return [
    `trace ${tree.traceId}: ${tree.spanCount} spans, ${tree.services.length} services (${tree.services.join(', ')}), ${formatMs(tree.durationUs)}, ${tree.errorCount} errors`,
    ...rows.map(
      (r) =>
        `${(r.label.length > width ? `${r.label.slice(0, width - 1)}…` : r.label).padEnd(width)}  ${r.rest}`,
    ),
    '(* = critical path)',
  ];
}

/** The `peak trace` command. */
export const traceCommand: Command = {
  name: 'trace',
  summary: 'show a trace as a tree, or search traces',
  args: '[traceId]',
  description:
    'With a trace id, prints its spans as a tree. Exit code: 0 when no span of the trace has an error, 1 when one does (so a script can check a trace), 2 for a usage error; a trace that is not stored (yet) is an error, exit 1. A search always exits 0.',
  options: {
    ...SERVER_OPTIONS,
    service: { type: 'string', description: 'search: spans of this service', valueName: 'NAME' },
    'min-ms': { type: 'string', description: 'search: spans at least this long', valueName: 'MS' },
    error: { type: 'boolean', description: 'search: failed spans only' },
    tag: { type: 'string', description: 'search: attribute key=value', valueName: 'K=V' },
    since: { type: 'string', description: 'search: minutes back (default 60)', valueName: 'MIN' },
    limit: {
      type: 'string',
      description: 'search: most traces listed (default 20)',
      valueName: 'N',
    },
  },
  examples: [
    'peak trace 0af7651916cd43dd8448eb211c80319c',
    'peak trace --service order --min-ms 200',
  ],
  async run({ values, positionals, out }) {
    const admin = await adminClient(values);
    const id = positionals[0];
    if (id !== undefined) {
      if (!/^[0-9a-fA-F]{32}$/.test(id)) {
        throw new UsageError(
          `'${id}' is not a trace id: give the 32 hex characters from a traceparent or a log line`,
        );
      }
      const tree = await admin.telemetry.trace(id);
      out.json(tree);
      for (const line of renderTraceTree(tree)) out.line(line);
      return tree.errorCount > 0 ? 1 : 0;
    }
    const minDurationMs = numberOption(values, 'min-ms');
    const traces = await admin.telemetry.traces({
      ...(typeof values.service === 'string' ? { service: values.service } : {}),
      ...(minDurationMs === undefined ? {} : { minDurationMs }),
      ...(values.error === true ? { error: true } : {}),
      ...(typeof values.tag === 'string' ? { tag: values.tag } : {}),
      sinceMinutes: numberOption(values, 'since') ?? 60,
      limit: numberOption(values, 'limit') ?? 20,
    });
    out.json({ traces });
    if (traces.length === 0) out.line('no matching traces');
    for (const t of traces) {
      out.line(
        `${t.traceId}  ${new Date(t.startUs / 1000).toISOString()}  ${formatMs(t.durationUs).padStart(10)}  ${t.service.padEnd(14)} ${t.name}${t.error ? '  ERROR' : ''}${t.stress ? '  [stress]' : ''}`,
      );
    }
    return 0;
  },
};
