/**
 * A run's report as one self-contained HTML file: the summary, latency percentiles and
 * throughput over time, errors per second, per step and per stage tables, and the errors,
 * with the plots drawn as inline SVG (no script, no CDN, opens offline and prints).
 */
import type { StressReport } from './stress-report.js';

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A series of points for {@link lineChart}. */
interface Series {
  name: string;
  color: string;
  points: readonly (readonly [number, number])[];
}

const W = 760;
const H = 220;
const PAD = { l: 56, r: 12, t: 12, b: 28 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** An SVG line chart of `series` over x, with axes, ticks and a legend. */
function lineChart(title: string, unit: string, series: readonly Series[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = Math.max(1, ...xs);
  const yMax = niceMax(Math.max(0, ...ys));
  const x = (v: number) => PAD.l + (v / xMax) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - (v / yMax) * (H - PAD.t - PAD.b);
  const grid: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    grid.push(
      `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>` +
        `<text x="${PAD.l - 6}" y="${y(v) + 4}" text-anchor="end">${esc(+v.toPrecision(3))}</text>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const v = Math.round((xMax * i) / 5);
    grid.push(`<text x="${x(v)}" y="${H - 8}" text-anchor="middle">${v}s</text>`);
  }
  const lines = series
    .filter((s) => s.points.length > 0)
    .map(
      (s) =>
        `<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${s.points
          .map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
          .join(' ')}"><title>${esc(s.name)}</title></polyline>`,
    );
  const legend = series
    .map(
      (s, i) =>
        `<rect x="${PAD.l + 8 + i * 110}" y="${PAD.t}" width="10" height="10" fill="${s.color}"/>` +
        `<text x="${PAD.l + 22 + i * 110}" y="${PAD.t + 9}">${esc(s.name)}</text>`,
    )
    .join('');
  return `<figure><figcaption>${esc(title)} (${esc(unit)})</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${grid.join('')}<line x1="${PAD.l}" x2="${PAD.l}" y1="${PAD.t}" y2="${H - PAD.b}" stroke="#9ca3af"/>${lines.join('')}${legend}</svg></figure>`;
}

function table(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  if (rows.length === 0) return '<p class="none">none</p>';
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** The report as a self-contained HTML document. */
export function renderHtmlReport(report: StressReport): string {
  const s = report.seconds;
  const pts = (f: (x: (typeof s)[number]) => number) => s.map((x) => [x.t, f(x)] as const);
  const open = report.model.kind !== 'virtual-users';
  const L = report.latency;
  const summary: [string, unknown][] = [
    ['scenario', report.scenario],
    ['run', report.runId],
    ['started', new Date(report.startedAt).toISOString()],
    ['model', JSON.stringify(report.model)],
    ['traffic', report.stress ? 'stress (shadow tables, topics, keys)' : 'real'],
    [
      'stopped',
      `${report.stopReason}${report.stopDetail === undefined ? '' : `: ${report.stopDetail}`}`,
    ],
    ['duration', `${report.durationS} s`],
    [
      'calls',
      `${report.totals.requests} (${report.totals.ok} ok, ${report.totals.errors} failed, ${report.totals.dropped} dropped)`,
    ],
    ['throughput', `${report.totals.throughput} calls/s`],
    ['error rate', `${(report.totals.errorRate * 100).toFixed(3)} %`],
    [
      'latency',
      `p50 ${L.p50Ms} · p90 ${L.p90Ms} · p99 ${L.p99Ms} · p99.9 ${L.p999Ms} · max ${L.maxMs} ms${open ? ' (from the scheduled send time)' : ''}`,
    ],
    [
      'generator',
      `${report.generator.cpuUsPerRequest} µs CPU a call, worst send lag ${report.generator.maxSendLagMs} ms, ${report.generator.agents} agent(s)`,
    ],
  ];
  if (report.thresholds !== undefined)
    summary.push(['thresholds', JSON.stringify(report.thresholds)]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stress run ${esc(report.scenario)} · ${esc(report.runId)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:820px;color:#111827}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left}
th{background:#f9fafb}figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}
svg text{font:11px system-ui,sans-serif;fill:#374151}.none{color:#6b7280}
.bad{color:#b91c1c}
</style></head><body>
<h1>Stress run: ${esc(report.scenario)}</h1>
<p class="${report.stopReason === 'sla' ? 'bad' : ''}">${esc(report.stopReason === 'completed' ? 'Completed.' : `Stopped (${report.stopReason}): ${report.stopDetail ?? 'by hand'}.`)}</p>
${table(['', ''], summary)}
<h2>Latency over time</h2>
${lineChart('latency per second', 'ms', [
  { name: 'p50', color: '#2563eb', points: pts((x) => x.p50Ms) },
  { name: 'p90', color: '#16a34a', points: pts((x) => x.p90Ms) },
  { name: 'p99', color: '#dc2626', points: pts((x) => x.p99Ms) },
  { name: 'max', color: '#9ca3af', points: pts((x) => x.maxMs) },
])}
<h2>Throughput over time</h2>
${lineChart('calls answered per second', '/s', [
  { name: open ? 'target rate' : 'virtual users', color: '#9ca3af', points: pts((x) => x.target) },
  { name: 'answered', color: '#2563eb', points: pts((x) => x.ok + x.errors) },
  { name: 'failed', color: '#dc2626', points: pts((x) => x.errors) },
  { name: 'in flight', color: '#d97706', points: pts((x) => x.inFlight) },
])}
<h2>Steps</h2>
${table(
  ['step', 'ok', 'failed', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
  report.steps.map((x) => [
    x.name,
    x.ok,
    x.errors,
    x.latency.p50Ms,
    x.latency.p90Ms,
    x.latency.p99Ms,
    x.latency.maxMs,
  ]),
)}
<h2>Stages</h2>
${table(
  ['stage', 'seconds', 'calls/s', 'failed', 'worst p99 ms'],
  report.stages.map((x) => [x.stage + 1, `${x.fromS}-${x.toS}`, x.throughput, x.errors, x.p99Ms]),
)}
<h2>Errors</h2>
${table(
  ['step', 'message', 'count', 'first answer'],
  report.errors.map((e) => [e.step, e.message, e.count, e.sample ?? '']),
)}
</body></html>
`;
}
