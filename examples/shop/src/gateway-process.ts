/**
 * The gateway as a process of its own (as the services are): `PEAK_SERVER=<url> node
 * gateway-process.js` starts the edge on a free port, prints one JSON ready line with its
 * URL, and closes gracefully on SIGTERM (stops accepting, lets buys in flight answer,
 * flushes its spans and metrics).
 */
import { HttpRegistry } from 'peakware/registry';
import { startGateway } from './gateway.js';
import { sampleRatioFromEnv } from './shop-telemetry.js';

const controlPlane = process.env.PEAK_SERVER;
if (!controlPlane) {
  console.error('usage: PEAK_SERVER=<control plane url> node gateway-process.js');
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

process.once('SIGTERM', () => {
  gateway
    .close()
    .then(() => registry.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
});
