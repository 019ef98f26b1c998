/**
 * The shop: Peakware's main job. `npm start` runs it on the embedded default.
 *
 * Today it brings up the control plane (on the embedded PostgreSQL) that every later part
 * of the buy chain registers with, and says where it listens. Each subsystem that lands
 * adds its part of the chain here (gateway → cart / product / promotion / coupon /
 * inventory / order / payment) until the flash-sale run is the proof that the parts fit.
 *
 * Flags: --data DIR (default .peak), --port N (default 7420), --smoke (start, check
 * readiness, stop: what CI runs).
 */
import { parseArgs } from 'node:util';
import { createLogger, errorMessage, isPeakError } from 'peakware/core';
import { PeakServer } from 'peakware/server';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '.peak' },
    port: { type: 'string', default: '7420' },
    smoke: { type: 'boolean', default: false },
  },
});

const logger = createLogger({
  name: 'shop',
  level: 'info',
  format: process.stderr.isTTY ? 'pretty' : 'json',
});

async function main(): Promise<number> {
  console.log(
    'Peakware shop: starting the control plane (embedded PostgreSQL on first run takes a few seconds)',
  );
  const server = await PeakServer.start({
    dataDir: values.data,
    port: Number(values.port),
    logger,
  });
  const ready = await fetch(`${server.info.url}/ready`);
  const state = (await ready.json()) as { status: string };
  console.log('');
  console.log(`  control plane   ${server.info.url}   (${state.status})`);
  console.log(
    `  postgres        ${server.info.postgres.mode === 'embedded' ? `embedded, port ${server.info.postgres.port}` : 'external'}; data in ${server.info.dataDir}`,
  );
  if (server.info.adminToken !== undefined) {
    console.log(
      `  admin token     ${server.info.adminToken}  (shown once; saved in ${server.info.adminTokenFile})`,
    );
  }
  console.log('');
  console.log(
    '  try:  curl ' +
      `${server.info.url}/ready` +
      `   or   npx peak status --server ${server.info.url}`,
  );
  if (values.smoke) {
    const clean = await server.stop();
    console.log(`smoke run: ${state.status}, stopped ${clean ? 'cleanly' : 'with force'}`);
    return state.status === 'ready' && clean ? 0 : 1;
  }
  console.log('  stop: Ctrl-C');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`shop: error: ${errorMessage(err)}${isPeakError(err) ? ` [${err.code}]` : ''}`);
    process.exitCode = 1;
  },
);
