/**
 * What merging the pushed RT histograms costs the readers. Two services push the same
 * per-second metrics to a control plane (its own process, embedded PostgreSQL) over the
 * push API, 4 instances × 20 resources + each instance's inbound node for the last N
 * minutes, one with each second's RT histogram (about 30 pairs, as a busy resource fills)
 * and one without (an SDK before histograms: p99 the highest instance's). Then the reads a
 * user makes, through the admin API, are timed for both: the console's metrics history at
 * 1 s by total and by resource, and `peak top`'s live view. The figure is the time of one
 * read with histograms over the same read without.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from 'peakware/admin';
import { type Benchmark, median, round } from '../bench.js';
import { startControlPlaneChild } from '../control-plane-child.js';

const INSTANCES = 4;
const RESOURCES = 20;
/** Bucket indexes 40..69 of core's histogram: about 0.1 to 0.5 ms, 30 counters. */
const HIST = Array.from({ length: 30 }, (_, k) => [40 + k, 3 + (k % 5)]).flat();

async function push(url: string, credential: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}/api/v1/telemetry/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${credential}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`push: HTTP ${res.status} ${await res.text()}`);
}

export const benchmark: Benchmark = {
  name: 'metric-histograms',
  description:
    'reads of pushed per-second metrics (console history at 1 s by total and by resource, peak top live) with RT histograms merged vs the same rows without',
  async run({ runs, quick, progress }) {
    const minutes = quick ? 2 : 10;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-histograms-'));
    const { child, port } = await startControlPlaneChild(dataDir);
    const url = `http://127.0.0.1:${port}`;
    try {
      const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
      const credential = (
        await readFile(path.join(dataDir, 'credentials', 'local'), 'utf8')
      ).trim();
      const admin = new AdminClient({ servers: url, token });
      const now = Math.floor(Date.now() / 1000) * 1000;
      const from = now - minutes * 60_000;
      progress(
        `pushing ${minutes} min of ${INSTANCES} instances × ${RESOURCES + 1} resources, twice`,
      );
      for (const [service, withHist] of [
        ['with-hist', true],
        ['without-hist', false],
      ] as const) {
        for (let i = 0; i < INSTANCES; i++) {
          let batch: unknown[] = [];
          for (let t = from; t < now; t += 1000) {
            for (let r = 0; r <= RESOURCES; r++)
              batch.push({
                resource: r === 0 ? '__inbound__' : `r${r}`,
                second: t,
                pass: 100,
                block: 0,
                success: 100,
                error: 0,
                rtAvg: 0.3,
                rtP99: 0.5,
                concurrency: 1,
                ...(withHist ? { rtHist: HIST } : {}),
              });
            if (batch.length >= 4000) {
              await push(url, credential, { service, instance: `i${i}`, metrics: batch });
              batch = [];
            }
          }
          if (batch.length > 0)
            await push(url, credential, { service, instance: `i${i}`, metrics: batch });
        }
      }
      const reads = {
        'history, 1 s, by total': (service: string) =>
          admin.console.metrics({ from, to: now, step: 1, by: 'total', service }),
        'history, 1 s, by resource': (service: string) =>
          admin.console.metrics({ from, to: now, step: 1, by: 'resource', service }),
        'peak top, last 60 s': (service: string) =>
          admin.telemetry.liveMetrics({ service, seconds: 60 }),
      };
      const ms = new Map<string, number[]>();
      for (let run = 0; run < runs; run++) {
        for (const [name, read] of Object.entries(reads)) {
          for (const service of ['with-hist', 'without-hist']) {
            const t0 = performance.now();
            await read(service);
            const key = `${name}|${service}`;
            ms.set(key, [...(ms.get(key) ?? []), performance.now() - t0]);
          }
        }
        progress(`run ${run + 1} of ${runs}`);
      }
      const figures: Record<string, number> = {};
      const ratios: Record<string, number> = {};
      const table: (string | number)[][] = [
        ['read', 'with histograms, ms', 'without, ms', 'with / without'],
      ];
      for (const name of Object.keys(reads)) {
        const w = median(ms.get(`${name}|with-hist`)!);
        const wo = median(ms.get(`${name}|without-hist`)!);
        figures[`${name}.withMs`] = round(w);
        figures[`${name}.withoutMs`] = round(wo);
        ratios[`${name} with/without`] = round(w / wo);
        table.push([name, round(w), round(wo), round(w / wo)]);
      }
      return {
        figures,
        ratios,
        table,
        notes: [
          `${minutes} min of pushes from ${INSTANCES} instances × ${RESOURCES} resources + inbound, 30 histogram pairs a row; reads through the admin API (HTTP, the control plane in its own process)`,
          'without: the same rows pushed with no histogram, so p99 is the highest instance’s',
        ],
      };
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    }
  },
};
