/**
 * scale: a Supervisor runs a service's instances (here a tiny worker), restarts one that
 * crashes, and takes its count from the control plane: `peak scale set` (here the admin
 * client's `setInstances`) scales it out, then back in, and every change is in the
 * decision history. `peak supervise app.yaml` is the same Supervisor behind the CLI.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 PEAK_ADMIN_TOKEN=... node dist/scale/supervise-scale.js
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Supervisor } from 'peakware/scale';
import { admin, check, server, until } from '../env.js';

const app = `snippet-scale-${process.pid}`;
const service = 'snippet.worker';
const stateDir = await mkdtemp(path.join(os.tmpdir(), 'peak-snippet-scale-'));
const supervisor = new Supervisor({
  spec: {
    app,
    cwd: stateDir,
    services: [
      {
        name: service,
        // An instance: runs until SIGTERM, then exits (a real one stops its RpcServer first).
        command: `${process.execPath} -e "process.on('SIGTERM',()=>process.exit(0));setInterval(()=>{},1000)"`,
        instances: 1,
        version: 'v1',
        stopTimeoutMs: 5000,
        env: {},
      },
    ],
  },
  stateDir,
  servers: server,
  reportEveryMs: 200,
});
const instances = async () =>
  (await admin().scale.status(app)).services.find((s) => s.service === service)?.instances ?? [];

try {
  await supervisor.start();
  await until('one instance reported', async () => (await instances()).length === 1);
  const [first] = await instances();
  process.kill(first!.pid, 'SIGKILL');
  await until('the crashed instance restarted', async () => {
    const [i] = await instances();
    return i !== undefined && i.restarts === 1 && i.state === 'running';
  });
  await admin().scale.setInstances(app, service, 3, 'snippet');
  await until('three instances', async () => (await instances()).length === 3);
  await admin().scale.setInstances(app, service, 1, 'snippet');
  await until('back to one', async () => (await instances()).length === 1);
  const history = await admin().scale.history(app, { service });
  check(
    history.map((d) => `${d.action} ${d.desired}`).join(', ') === 'in 1, out 3',
    `history: ${history.map((d) => d.reason).join('; ')}`,
  );
  console.log(`${service}: restarted after a crash, scaled 1 -> 3 -> 1`);
} finally {
  await supervisor.stop();
  await rm(stateDir, { recursive: true, force: true });
}
console.log('ok');
