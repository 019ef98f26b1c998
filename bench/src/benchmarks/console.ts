/// <reference lib="dom" />
/**
 * The console in Chromium (playwright-core driving Debian's chromium) with 200 services and
 * 2 000 instances registered (10 each, through the registry SDK), every service pushing
 * per-second metrics through the SDK's MetricsPusher, and a call graph of 500 services in the
 * traces (through the SDK's span exporter). Measured in the browser:
 *
 * - page load: navigation start to the overview showing the registry's counts and its live
 *   chart drawn (`performance.now()` in the page), and the same for the services page (200
 *   rows) and the topology (500 nodes laid out and drawn);
 * - live charts: over 10 s on the overview, the gaps between chart updates (goal: one a
 *   second) and the time each per-second metrics request takes (resource timing).
 *
 * The control plane runs in its own process (as `peak server` does), the SDK clients and
 * Chromium beside it.
 *
 * Goals: page load ≤ 1 s; the live chart updated every 1 s (p95 gap ≤ 1.5 s); 500 services
 * loaded and drawn ≤ 1 s. The anchors are not run here (they are whole products): Grafana's
 * refresh floor is 5 s, SkyWalking's topology stalls past about 100 nodes (#13390).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from 'peakware/admin';
import { HttpRegistry } from 'peakware/registry';
import { ControlPlaneSpanExporter, MetricsPusher, type SpanRecord } from 'peakware/telemetry';
import { chromium } from 'playwright-core';
import { type Benchmark, median, round } from '../bench.js';
import { startControlPlaneChild } from '../control-plane-child.js';

const SERVICES = 200;
const INSTANCES = 10;
const GRAPH = 500;

const hex = (n: number) =>
  Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

/** Spans of a call graph of `n` services: each calls the next two (a tree), once. */
function graphSpans(n: number): SpanRecord[] {
  const spans: SpanRecord[] = [];
  const now = Date.now() * 1000;
  for (let i = 1; i < n; i++) {
    const parent = Math.floor((i - 1) / 2);
    const traceId = hex(32);
    const client = hex(16);
    const base = { traceId, startUs: now - i * 10, error: false, stress: false, attributes: {} };
    spans.push(
      {
        ...base,
        spanId: client,
        name: 'call',
        kind: 'client',
        service: `g-${parent}`,
        durationUs: 900,
      },
      {
        ...base,
        spanId: hex(16),
        parentSpanId: client,
        name: 'call',
        kind: 'server',
        service: `g-${i}`,
        durationUs: 800,
      },
    );
  }
  return spans;
}

function p95(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))] ?? Number.NaN;
}

export const benchmark: Benchmark = {
  name: 'console',
  description:
    'console page load and live charts in Chromium with 200 services / 2 000 instances registered, topology of 500 services',
  async run({ runs, quick, progress }) {
    const executablePath = [process.env.PEAK_CHROMIUM, '/usr/bin/chromium'].find(
      (p): p is string => p !== undefined && existsSync(p),
    );
    if (executablePath === undefined)
      throw new Error('install chromium (apt-get install chromium)');
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-console-'));
    const { child, port } = await startControlPlaneChild(dataDir);
    const url = `http://127.0.0.1:${port}`;
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    // The registry and the metric pushers send the local app's credential (every SDK grant).
    process.env.PEAK_CREDENTIAL = (
      await readFile(path.join(dataDir, 'credentials', 'local'), 'utf8')
    ).trim();
    const registry = new HttpRegistry({ servers: url, leaseMs: 600_000 });
    const pushers: MetricsPusher[] = [];
    let feed: NodeJS.Timeout | undefined;
    const browser = await chromium.launch({
      executablePath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
      ],
    });
    try {
      progress(`registering ${SERVICES} services x ${INSTANCES} instances`);
      const regs = [];
      for (let s = 0; s < SERVICES; s++) {
        for (let i = 0; i < INSTANCES; i++) {
          regs.push({
            instanceId: `svc-${s}-${i}`,
            service: `svc-${String(s).padStart(3, '0')}`,
            version: '1.0.0',
            group: 'fleet',
            host: `10.2.${s}.${i}`,
            port: 9000,
            weight: 100,
            tags: [],
            metadata: {},
          });
        }
      }
      for (let i = 0; i < regs.length; i += 200) {
        await Promise.all(regs.slice(i, i + 200).map((r) => registry.register(r)));
      }
      const admin = new AdminClient({ servers: url, token });
      const registered = (await admin.registry.services()).reduce((n, s) => n + s.up, 0);
      progress(
        `${registered} instances registered; metrics from ${SERVICES} services every second`,
      );
      for (let s = 0; s < SERVICES; s++) {
        pushers.push(
          new MetricsPusher({
            servers: url,
            service: `svc-${String(s).padStart(3, '0')}`,
            instance: `svc-${s}-0`,
          }),
        );
      }
      let last = Math.floor(Date.now() / 1000) * 1000 - 120_000;
      const push = () => {
        const second = Math.floor(Date.now() / 1000) * 1000 - 1000;
        for (let t = last + 1000; t <= second; t += 1000) {
          for (const [s, p] of pushers.entries()) {
            const calls = 20 + (s % 7);
            p.record([
              {
                resource: 'get',
                second: t,
                pass: calls,
                block: 0,
                success: calls,
                error: s % 11 === 0 ? 1 : 0,
                rtAvg: 3,
                rtP99: 9,
                concurrency: 1,
              },
            ]);
          }
        }
        last = Math.max(last, second);
      };
      push();
      feed = setInterval(push, 250);
      progress(`a call graph of ${GRAPH} services in the traces`);
      await new ControlPlaneSpanExporter({ servers: url }).export(graphSpans(GRAPH));
      await new Promise((r) => setTimeout(r, 3000));

      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${url}/console`);
      await page.fill('input[name=token]', token);
      await page.click('button[type=submit]');
      await page.getByTestId('who').waitFor();

      const loads = {
        overview: [] as number[],
        services: [] as number[],
        topology: [] as number[],
      };
      const draws: number[] = [];
      const tries = quick ? 1 : runs;
      for (let run = 0; run < tries; run++) {
        progress(`page loads, run ${run + 1}/${tries}`);
        await page.goto(`${url}/console/overview`);
        await page.waitForFunction(
          (n) =>
            document.querySelector('[data-testid=stat-services] .value')?.textContent ===
              String(n) &&
            Number(
              document.querySelector('[data-testid=live-chart]')?.getAttribute('data-points'),
            ) > 0,
          SERVICES,
          { timeout: 20_000, polling: 'raf' },
        );
        loads.overview.push(await page.evaluate(() => performance.now()));
        await page.goto(`${url}/console/services`);
        await page.waitForFunction(
          (n) => document.querySelectorAll('[data-testid=services] tbody tr').length === n,
          SERVICES,
          { timeout: 20_000, polling: 'raf' },
        );
        loads.services.push(await page.evaluate(() => performance.now()));
        await page.goto(`${url}/console/topology`);
        await page.waitForFunction(
          (n) =>
            Number(
              document.querySelector('[data-testid=topology-graph]')?.getAttribute('data-nodes'),
            ) >= n,
          GRAPH,
          { timeout: 20_000, polling: 'raf' },
        );
        loads.topology.push(await page.evaluate(() => performance.now()));
        draws.push(Number(await page.getByTestId('topology-graph').getAttribute('data-render-ms')));
      }

      progress('live chart for 10 s');
      await page.goto(`${url}/console/overview`);
      await page.getByTestId('chart-updates').waitFor();
      await page.evaluate(() => {
        const w = window as unknown as { updates: number[] };
        w.updates = [];
        const el = document.querySelector('[data-testid=chart-updates]')!;
        new MutationObserver(() => w.updates.push(performance.now())).observe(el, {
          attributes: true,
          attributeFilter: ['data-updates'],
        });
      });
      await page.waitForTimeout(quick ? 5000 : 10_000);
      const live = await page.evaluate(() => ({
        updates: (window as unknown as { updates: number[] }).updates,
        requests: performance
          .getEntriesByType('resource')
          .filter((e) => e.name.includes('/api/v1/console/metrics'))
          .map((e) => e.duration),
      }));
      const gaps = live.updates.slice(1).map((t, i) => t - live.updates[i]!);
      const figures = {
        'overview.loadMs': round(median(loads.overview)),
        'services.loadMs': round(median(loads.services)),
        'topology.loadMs': round(median(loads.topology)),
        'topology.drawMs': round(median(draws)),
        'live.updatesPer10s': round((live.updates.length * 10_000) / (quick ? 5000 : 10_000)),
        'live.gapMedianMs': round(median(gaps)),
        'live.gapP95Ms': round(p95(gaps)),
        'live.requestMedianMs': round(median(live.requests)),
        'live.requestP95Ms': round(p95(live.requests)),
        instances: registered,
      };
      return {
        figures,
        ratios: {
          'overview.loadMs/1000': round(figures['overview.loadMs'] / 1000),
          'topology.loadMs/1000': round(figures['topology.loadMs'] / 1000),
          'live.gapP95Ms/1000': round(figures['live.gapP95Ms'] / 1000),
        },
        table: [
          ['measure', 'median', 'goal'],
          ['overview load (counts + live chart)', `${figures['overview.loadMs']} ms`, '<= 1000 ms'],
          [`services load (${SERVICES} rows)`, `${figures['services.loadMs']} ms`, '<= 1000 ms'],
          [`topology load (${GRAPH} services)`, `${figures['topology.loadMs']} ms`, '<= 1000 ms'],
          ['topology layout + draw', `${figures['topology.drawMs']} ms`, ''],
          ['live chart updates per 10 s', figures['live.updatesPer10s'], '10'],
          [
            'gap between updates (median / p95)',
            `${figures['live.gapMedianMs']} / ${figures['live.gapP95Ms']} ms`,
            '1000 / <= 1500 ms',
          ],
          [
            'metrics request (median / p95)',
            `${figures['live.requestMedianMs']} / ${figures['live.requestP95Ms']} ms`,
            '',
          ],
        ],
        notes: [
          `${registered} instances registered (${SERVICES} services x ${INSTANCES}), ${SERVICES} of them pushing per-second metrics through MetricsPusher; Chromium ${browser.version()} headless, 1440x900, on the same machine as the server`,
        ],
      };
    } finally {
      clearInterval(feed);
      await browser.close();
      await Promise.all(pushers.map((p) => p.close()));
      await registry.close();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    }
  },
};
