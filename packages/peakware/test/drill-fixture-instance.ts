/**
 * A service instance for the drill tests, run as its own process: a config client and a
 * DrillAgent for app PEAK_APP (instance PEAK_INSTANCE, tags PEAK_TAGS, config snapshot
 * file PEAK_SNAPSHOT), and an HTTP server behind `httpFaultHandler` that answers 200 `ok`
 * on every path. Prints one ready line `{ ready, port, boot }` and runs until killed.
 */
import http from 'node:http';
import { ConfigClient } from '../src/config/index.js';
import { DrillAgent, httpFaultHandler } from '../src/drill/index.js';

const server = process.env.PEAK_SERVER ?? '';
const app = process.env.PEAK_APP ?? 'drilltest';
const instanceId = process.env.PEAK_INSTANCE ?? 'i';
const tags = (process.env.PEAK_TAGS ?? '').split(',').filter((t) => t !== '');
const config = new ConfigClient({
  servers: server,
  app,
  instanceId,
  tags,
  reconnectMs: 100,
  ...(process.env.PEAK_SNAPSHOT ? { snapshotFile: process.env.PEAK_SNAPSHOT } : {}),
});
await config.start(5000);
const agent = new DrillAgent({
  config,
  app,
  instanceId,
  tags,
  service: 'drilltest.web',
  servers: server,
  reportEveryMs: 200,
  unreachableMs: 1500,
}).start();
const web = http.createServer(
  httpFaultHandler(agent, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  }),
);
await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
const port = (web.address() as { port: number }).port;
process.stdout.write(`${JSON.stringify({ ready: true, port, boot: agent.boot })}\n`);
process.on('SIGTERM', () => {
  void agent.close().finally(() => process.exit(0));
});
