/**
 * Test support for the scale tests: a control plane (in this process), an app file whose
 * one service is test/scale-fixture-service.ts, and `peak supervise` on it as a real
 * process; `stop()` ends the supervisor, kills whatever instance a test left behind (from
 * the pid files) and removes the folder.
 *
 * Credentials as a deployment has them: the supervisor reports with app
 * `scaletest.supervisor`'s (`scale:scaletest.*` only) as PEAK_CREDENTIAL, each instance gets
 * app `scaletest.echo`'s (register and telemetry of the service) through the app file's
 * env, and this process's SDK clients use the server's local app (`useLocalCredential`).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../src/admin/index.js';
import type { InstanceReport } from '../src/scale/index.js';
import { PeakServer, type PeakServerOptions } from '../src/server/index.js';
import { useLocalCredential } from './support/credentials.js';
import { type PeakProcess, spawnPeak } from './support/peak-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The app and service of the scale tests. */
export const APP = 'scaletest';
export const SERVICE = 'scaletest.echo';

/** A running control plane with a supervised app. */
export interface ScaleStack {
  dir: string;
  server: PeakServer;
  admin: AdminClient;
  stateDir: string;
  appFile: string;
  /** Starts `peak supervise` on the app file (again). */
  supervise(): Promise<PeakProcess>;
  /** The service's instances the supervisors report, optionally in one state. */
  instances(state?: InstanceReport['state']): Promise<InstanceReport[]>;
  /** The command line of an instance, with extra arguments (`--fail`, `--slow-ms=N`). */
  command(...args: string[]): string;
  /** Pids in the state folder's pid files. */
  pidsInState(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Starts the stack; `env` goes to every instance, `server` to PeakServer.start. */
export async function startScaleStack(
  options: {
    instances?: number;
    env?: Record<string, string>;
    server?: Partial<PeakServerOptions>;
  } = {},
): Promise<ScaleStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-scale-'));
  const stateDir = path.join(dir, 'state');
  const server = await PeakServer.start({
    dataDir: path.join(dir, 'data'),
    port: 0,
    ...options.server,
  });
  useLocalCredential(server);
  const token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
  const admin = new AdminClient({ servers: server.info.url, token });
  const supervisorCredential = (await admin.apps.create(`${APP}.supervisor`, [`scale:${APP}.*`]))
    .credential;
  const instanceCredential = (
    await admin.apps.create(SERVICE, [`register:${SERVICE}`, `telemetry:${APP}.*`])
  ).credential;
  const appFile = path.join(dir, 'app.yaml');
  const env = {
    PEAK_SERVER: server.info.url,
    PEAK_CREDENTIAL: instanceCredential,
    ...options.env,
  };
  await writeFile(
    appFile,
    [
      `app: ${APP}`,
      'services:',
      `  - name: ${SERVICE}`,
      `    command: ${process.execPath} ${path.join(here, 'scale-fixture-service.js')}`,
      `    instances: ${options.instances ?? 2}`,
      '    stopTimeoutMs: 8000',
      '    env:',
      ...Object.entries(env).map(([k, v]) => `      ${k}: '${v}'`),
      '',
    ].join('\n'),
  );
  const started: PeakProcess[] = [];
  const pidsInState = async (): Promise<number[]> => {
    const out: number[] = [];
    for (const f of await readdir(stateDir).catch(() => [] as string[]))
      if (f.endsWith('.json'))
        out.push(
          (JSON.parse(await readFile(path.join(stateDir, f), 'utf8')) as { pid: number }).pid,
        );
    return out;
  };
  return {
    dir,
    server,
    admin,
    stateDir,
    appFile,
    async supervise() {
      const p = spawnPeak(
        ['supervise', appFile, '--server', server.info.url, '--state', stateDir, '--json'],
        { PEAK_CREDENTIAL: supervisorCredential },
      );
      started.push(p);
      await p.waitFor('ready');
      return p;
    },
    async instances(state) {
      const s = (await admin.scale.status(APP)).services.find((x) => x.service === SERVICE);
      return (s?.instances ?? []).filter((i) => state === undefined || i.state === state);
    },
    pidsInState,
    command: (...args) =>
      [process.execPath, path.join(here, 'scale-fixture-service.js'), ...args].join(' '),
    async stop() {
      for (const p of started) {
        if (p.child.exitCode === null && p.child.signalCode === null) {
          p.child.kill('SIGTERM');
          await p.exited;
        }
      }
      for (const pid of await pidsInState()) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
