/**
 * `peak top`: two tables, refreshed every `--interval` seconds (`--once` prints them once).
 * First the live per-service, per-resource figures SDKs push every second (`MetricsPusher`:
 * QPS, errors, blocked, RT avg/p50/p99, concurrency, summed over instances, last
 * `--seconds`), exact because every call is counted; then per-endpoint QPS, errors and RT
 * p50/p99 from the collector's spans over the last minute (sampled spans; errors and slow
 * calls always kept; stress traffic on its own rows).
 */
import type { Command } from '../command.js';
import { adminClient, SERVER_OPTIONS } from '../control-client.js';

const ms = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));

/** The `peak top` command. */
export const topCommand: Command = {
  name: 'top',
  summary: 'live per-service QPS, errors, blocked, RT and concurrency',
  options: {
    ...SERVER_OPTIONS,
    service: { type: 'string', description: 'only this service', valueName: 'NAME' },
    interval: {
      type: 'string',
      description: 'seconds between refreshes (default 2)',
      valueName: 'S',
      number: { min: 0.5, max: 3600 },
    },
    once: { type: 'boolean', description: 'print the tables once and exit' },
    seconds: {
      type: 'string',
      description: 'seconds of pushed metrics to average (default 10)',
      valueName: 'S',
      integer: { min: 1, max: 3600 },
    },
  },
  async run({ values, out, json, wide }) {
    const admin = await adminClient(values);
    const intervalMs = Number(values.interval ?? 2) * 1000;
    const service = typeof values.service === 'string' ? { service: values.service } : {};
    const seconds = Number(values.seconds ?? 10);
    for (;;) {
      const [{ resources }, endpoints] = await Promise.all([
        admin.telemetry.liveMetrics({ seconds, ...service }),
        admin.telemetry.endpoints({ sinceMinutes: 1, ...service }),
      ]);
      const rows = endpoints
        .map((e) => ({ ...e, qps: e.calls / 60 }))
        .sort((a, b) => b.qps - a.qps);
      out.json({ resources, endpoints: rows });
      // Clear the screen between refreshes on a terminal only; a pipe gets plain frames.
      const tty = (out.stdout as { isTTY?: boolean }).isTTY === true;
      if (values.once !== true && !json && tty) out.stdout.write('\x1b[2J\x1b[H');
      const cut = (s: string) => (wide ? s : s.slice(0, 36));
      out.line(`peak top  ${admin.http.server}  ${new Date().toISOString()}`);
      out.line(`live: pushed per-second metrics, last ${seconds} s`);
      out.line(
        `${'SERVICE'.padEnd(16)} ${'RESOURCE'.padEnd(36)} ${'QPS'.padStart(8)} ${'ERR/S'.padStart(7)} ${'BLOCK/S'.padStart(7)} ${'AVG'.padStart(7)} ${'P50'.padStart(7)} ${'P99'.padStart(7)} ${'CONC'.padStart(5)} ${'INST'.padStart(4)}`,
      );
      for (const r of resources) {
        out.line(
          `${r.service.padEnd(16)} ${cut(r.resource).padEnd(36)} ${r.qps.toFixed(2).padStart(8)} ${r.errorQps.toFixed(2).padStart(7)} ${r.blockQps.toFixed(2).padStart(7)} ${ms(r.rtAvgMs).padStart(7)} ${ms(r.rtP50Ms).padStart(7)} ${ms(r.rtP99Ms).padStart(7)} ${String(r.concurrency).padStart(5)} ${String(r.instances).padStart(4)}`,
        );
      }
      if (resources.length === 0) {
        out.line('(no metrics pushed lately: services push them with MetricsPusher)');
      }
      out.line('');
      out.line('traces: server spans, last 60 s');
      out.line(
        `${'SERVICE'.padEnd(16)} ${'ENDPOINT'.padEnd(36)} ${'QPS'.padStart(8)} ${'ERR%'.padStart(6)} ${'P50'.padStart(8)} ${'P99'.padStart(8)}`,
      );
      for (const r of rows) {
        out.line(
          `${r.service.padEnd(16)} ${cut(`${r.name}${r.stress ? ' [stress]' : ''}`).padEnd(36)} ${r.qps.toFixed(2).padStart(8)} ${((r.errors / Math.max(1, r.calls)) * 100).toFixed(1).padStart(6)} ${r.p50Ms.toFixed(1).padStart(8)} ${r.p99Ms.toFixed(1).padStart(8)}`,
        );
      }
      if (rows.length === 0) out.line('(no server spans in the last minute)');
      if (values.once === true || json) return 0;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  },
};
