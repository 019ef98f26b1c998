/**
 * The gateway as a process of its own (as the services are): `PEAK_SERVER=<url> node
 * services/gateway-service.js` starts the edge on a free port, prints one JSON ready line with its
 * URL, and closes gracefully on SIGTERM (stops accepting, lets buys in flight answer,
 * flushes its spans and metrics).
 */
import { HttpRegistry } from 'peakware/registry';
import { startGateway } from '../gateway.js';
import { sampleRatioFromEnv } from '../shop-telemetry.js';

const controlPlane = process.env.PEAK_SERVER;
if (!controlPlane) {
  console.error('usage: PEAK_SERVER=<control plane url> node services/gateway-service.js');
  process.exit(2);
}

const registry = new HttpRegistry({ servers: [controlPlane], leaseMs: 6000 });
const gateway = await startGateway(
  registry,
  controlPlane,
  Number(process.env.PORT ?? 0),
  sampleRatioFromEnv(),
);
console.log(JSON.stringify({ event: 'ready', role: 'gateway', url: gateway.url }));

// SIGTERM from the chain, or SIGINT when Ctrl-C in a terminal reaches the whole process
// group: either way stop accepting, let buys in flight answer, deregister, once.
let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  gateway
    .close()
    .then(() => registry.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
