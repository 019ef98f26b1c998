/**
 * How the shop's reports read: the sale's progress line and item table, alert outcomes, a
 * capacity step's line and the capacity run's summary line.
 */
import type { CapacityReport, MachineSecond, StepFigures } from './capacity.js';
import type { ItemOutcome, SaleReport } from './flash-sale.js';
import type { AlertOutcome } from './shop-monitoring.js';

/** "fired at +3.1 s (1420), resolved at +21.0 s" or "quiet", and what the rule says. */
export function alertLine(a: AlertOutcome): string {
  const steps = a.transitions.map(
    (t) =>
      `${t.state} at +${t.atSecond.toFixed(1)} s${t.state === 'fired' ? ` (${Number(t.value.toPrecision(3))})` : ''}`,
  );
  return `${steps.length === 0 ? 'quiet' : steps.join(', ')}   [${a.says}]`;
}

/** A progress bar of `width` characters. */
export function bar(done: number, total: number, width = 24): string {
  const filled = Math.round((Math.min(done, total) / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** The sale's progress line: buyers sent, placed, sold out, blocked, errors. */
export function progressLine(r: SaleReport, buyers: number): string {
  const sent = r.hot.sent + r.regular.sent;
  const placed = r.hot.placed + r.regular.placed;
  const blocked = r.hot.blocked + r.regular.blocked;
  return `${bar(sent, buyers)} ${sent}/${buyers} buyers  ${r.seconds.toFixed(1)}s  placed ${placed}  sold-out ${r.hot.soldOut + r.regular.soldOut}  blocked ${blocked}  errors ${r.hot.errors + r.regular.errors}`;
}

/** One item's row of the sale table. */
export function row(name: string, o: ItemOutcome): string {
  return `  ${name.padEnd(12)} ${String(o.sent).padStart(7)} ${String(o.placed).padStart(7)} ${String(o.soldOut).padStart(9)} ${String(o.blocked).padStart(8)} ${String(o.errors).padStart(7)}`;
}

/** One line of a capacity step: rate, what was placed, latency, errors, CPU per order. */
export function stepLine(s: StepFigures): string {
  const cpu = Object.entries(s.cpuUsPerOrder)
    .filter(([k]) => k !== 'total')
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const line = `  ${String(s.rate).padStart(5)}/s  placed ${String(s.placedPerSecond).padStart(5)}/s  p50 ${String(s.load.latencyMs.p50).padStart(6)} ms  p99 ${String(s.load.latencyMs.p99).padStart(7)} ms  errors ${String(s.load.errors).padStart(5)}  ${s.passed ? 'pass' : 'FAIL'}  books ${s.books.consistent ? 'ok' : 'INCONSISTENT'}  cpu/order ${s.cpuUsPerOrder.total} µs (${cpu})  rw calls/order ${s.syscallsPerOrder.total}`;
  if (s.passed || s.load.bySecond.length === 0) return line;
  // A failed step also shows its p99 second by second (one stall or the whole step) beside
  // what the machine did those seconds, and the worst second in full: the chain's processes,
  // the load generator, other processes on this shared machine, steal and iowait.
  const seconds = s.load.bySecond.map((b) => String(Math.round(b.p99))).join(' ');
  // The wall-clock start, so a second can be found in the PostgreSQL and server logs.
  const from = new Date(s.load.startedAt).toISOString().slice(11, 19);
  const lines = [line, `          p99 by second from ${from} UTC (ms): ${seconds}`];
  const m = s.machineBySecond;
  if (m.length > 0) {
    const row = (pick: (x: MachineSecond) => number) => m.map((x) => pick(x).toFixed(1)).join(' ');
    lines.push(
      // iowait: a second the chain spent waiting on the disk (fsyncs), not on the cores.
      `          cores by second: chain ${row((x) => x.chain)} | others ${row((x) => x.others)} | steal ${row((x) => x.steal)} | iowait ${row((x) => x.iowait)}`,
    );
    const worst = s.load.bySecond.reduce((w, b, i, all) => (b.p99 > all[w]!.p99 ? i : w), 0);
    const at = m[worst];
    if (at !== undefined) {
      const kinds = Object.entries(at.byKind)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(', ');
      lines.push(
        `          second ${worst + 1} (p99 ${Math.round(s.load.bySecond[worst]!.p99)} ms), in cores: chain ${at.chain.toFixed(2)} (${kinds}), load generator ${at.loadGenerator.toFixed(2)}, others ${at.others.toFixed(2)}, irq ${at.irq.toFixed(2)}, steal ${at.steal.toFixed(2)}, iowait ${at.iowait.toFixed(2)}`,
      );
    }
  }
  return lines.join('\n');
}

/** The one-line summary `npm start -- --capacity` ends with. */
export function capacityLine(r: CapacityReport): string {
  const best = r.steps.find((s) => s.rate === r.capacity);
  const last = r.steps.at(-1);
  const books = r.steps.every((s) => s.books.consistent)
    ? 'consistent at every step'
    : 'INCONSISTENT';
  // Every step passed: the chain's capacity lies above the ladder, which is all it shows.
  const atTop = last?.passed === true;
  return best === undefined
    ? `capacity: no step passed (p99 <= ${r.slo.p99Ms} ms, errors < ${r.slo.maxErrorShare * 100} %); at ${last?.rate}/s p99 ${last?.load.latencyMs.p99} ms; books ${books}`
    : `capacity: ${atTop ? 'at least ' : ''}${r.capacity} orders/s${atTop ? ' (every step passed: give higher --rates to find it)' : ''} at p99 ${best.load.latencyMs.p99} ms (p50 ${best.load.latencyMs.p50} ms, ${best.load.errors} errors), ${best.cpuUsPerOrder.total} µs CPU per order over every process; books ${books}`;
}
