/**
 * drill: inject a fault into a running instance through the config center, see it take
 * effect, and see it reverted: by `peak drill stop`, and (a second fault) by its duration
 * alone. The instance runs a DrillAgent beside its config client; its HTTP listener is
 * behind `httpFaultHandler`, one check while no fault is active.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 PEAK_ADMIN_TOKEN=... node dist/drill/fault-revert.js
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigClient } from 'peakware/config';
import { DrillAgent, httpFaultHandler } from 'peakware/drill';
import { admin, check, server, within } from '../env.js';
import { peak } from '../peak-cli.js';

const app = `snippet-drill-${process.pid}`;
const config = new ConfigClient({ servers: [server], app, instanceId: 'web-1' });
await config.start();
const agent = new DrillAgent({
  config,
  app,
  instanceId: 'web-1',
  servers: server,
  reportEveryMs: 200,
}).start();
const web = http.createServer(
  httpFaultHandler(agent, (_req, res) => {
    res.end('ok');
  }),
);
await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(web.address() as { port: number }).port}/checkout`;
const status = async () => (await fetch(url)).status;
/** Resolves once GET /checkout answers `want`. */
const answers = (want: number) =>
  within(
    `GET /checkout answering ${want}`,
    (async () => {
      while ((await status()) !== want) await sleep(50);
    })(),
  );

try {
  // The control plane targets instances that report: wait for this one's first report.
  await within(
    'the instance report',
    (async () => {
      while (!(await admin().drill.status(app)).instances.some((i) => i.live)) await sleep(100);
    })(),
  );
  const injected = await admin().drill.inject(app, [
    {
      kind: 'error',
      code: 'PEAK_RPC_UNAVAILABLE',
      point: 'http',
      match: { route: '/checkout' },
      durationMs: 60_000,
      drill: 'snippet',
    },
  ]);
  console.log(`injected ${injected.faults[0]?.id}: checkout fails with 503 on web-1`);
  await answers(503);
  console.log((await peak('drill', 'status', '--app', app)).trim());
  await peak('drill', 'stop', '--app', app, '--drill', 'snippet');
  await answers(200);
  console.log('stopped: checkout answers 200 again');

  await admin().drill.inject(app, [
    { kind: 'exception', point: 'http', match: { route: '/checkout' }, durationMs: 1000 },
  ]);
  await answers(500);
  await answers(200);
  console.log('a 1 s fault ended by itself');
  check(agent.active().length === 0, 'no fault is left active');
  console.log('ok');
} finally {
  await agent.close();
  await config.close();
  web.close();
}
