/**
 * `peak top`: per-service, per-endpoint QPS, errors and RT p50/p99 from the collector's
 * spans over the last minute, refreshed every `--interval` seconds (`--once` prints one
 * table). Figures come from traces, so they count sampled spans (errors and slow calls
 * are always kept); stress traffic is shown on its own rows.
 */
import type { Command } from '../command.js';
import { requestJson, SERVER_OPTIONS } from '../control-client.js';

interface Endpoint {
  service: string;
  name: string;
  stress: boolean;
  calls: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

/** The `peak top` command. */
export const topCommand: Command = {
  name: 'top',
  summary: 'live per-service QPS, errors and RT from traces',
  options: {
    ...SERVER_OPTIONS,
    service: { type: 'string', description: 'only this service', valueName: 'NAME' },
    interval: {
      type: 'string',
      description: 'seconds between refreshes (default 2)',
      valueName: 'S',
    },
    once: { type: 'boolean', description: 'print one table and exit' },
  },
  async run({ values, out, json }) {
    const server = String(values.server);
    const intervalMs = Math.max(500, Number(values.interval ?? 2) * 1000 || 2000);
    const q = new URLSearchParams({ sinceMinutes: '1' });
    if (typeof values.service === 'string') q.set('service', values.service);
    for (;;) {
      const { endpoints } = await requestJson<{ endpoints: Endpoint[] }>(
        server,
        'GET',
        `/api/v1/telemetry/endpoints?${q}`,
      );
      const rows = endpoints
        .map((e) => ({ ...e, qps: e.calls / 60 }))
        .sort((a, b) => b.qps - a.qps);
      out.json({ endpoints: rows });
      if (values.once !== true && !json) out.stdout.write('\x1b[2J\x1b[H');
      out.line(`peak top  ${server}  last 60 s  ${new Date().toISOString()}`);
      out.line(
        `${'SERVICE'.padEnd(16)} ${'ENDPOINT'.padEnd(36)} ${'QPS'.padStart(8)} ${'ERR%'.padStart(6)} ${'P50'.padStart(8)} ${'P99'.padStart(8)}`,
      );
      for (const r of rows) {
        out.line(
          `${r.service.padEnd(16)} ${`${r.name}${r.stress ? ' [stress]' : ''}`.slice(0, 36).padEnd(36)} ${r.qps.toFixed(2).padStart(8)} ${((r.errors / Math.max(1, r.calls)) * 100).toFixed(1).padStart(6)} ${r.p50Ms.toFixed(1).padStart(8)} ${r.p99Ms.toFixed(1).padStart(8)}`,
        );
      }
      if (rows.length === 0) out.line('(no server spans in the last minute)');
      if (values.once === true || json) return 0;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  },
};
