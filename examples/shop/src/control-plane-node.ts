/**
 * The shop's second control-plane node (`--control-plane 2`): a `peak server` process on
 * the first node's PostgreSQL, with a data folder of its own and a fixed port, so that when
 * it dies (a kill -9 mid-sale) it is started again where every client's server list points.
 * The first node runs inside the shop's main process (it owns the embedded PostgreSQL and
 * the report); the services and the gateway list the second node first, so its death moves
 * every client of the chain to the first node.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';

/** A running second node: its URL (the same after a restart) and its process. */
export interface ControlPlaneNode {
  url: string;
  child: ChildProcess;
}

/** How long the node may take to print its ready line on a loaded machine. */
const READY_TIMEOUT_MS = 180_000;

const peakCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('peakware/package.json')),
  'bin',
  'peak.js',
);

/** A free TCP port on 127.0.0.1, for a node that must come back on the same one. */
export async function freeLoopbackPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port found');
  return address.port;
}

/**
 * Starts `peak server` on `postgresUrl` in `dataDir` at `port` and waits for its ready
 * line. It watches this process (as under `npx`): a shop killed with SIGKILL takes it along.
 */
export async function startControlPlaneNode(options: {
  postgresUrl: string;
  dataDir: string;
  port: number;
  /** The message databases besides its own (`PEAK_MQ_DATABASES`), name → URL. */
  mqDatabases?: Readonly<Record<string, string>>;
}): Promise<ControlPlaneNode> {
  await mkdir(options.dataDir, { recursive: true });
  const child = spawn(
    process.execPath,
    [
      peakCli,
      'server',
      '--postgres',
      options.postgresUrl,
      '--data',
      options.dataDir,
      '--port',
      String(options.port),
      '--log-level',
      'warn',
      '--json',
    ],
    {
      // parent-watch.ts stops a node whose parent went away when it runs under `npm exec`.
      env: {
        ...process.env,
        npm_command: 'exec',
        ...(options.mqDatabases === undefined
          ? {}
          : {
              PEAK_MQ_DATABASES: Object.entries(options.mqDatabases)
                .map(([name, url]) => `${name}=${url}`)
                .join(','),
            }),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`control-plane node 2 not ready in ${READY_TIMEOUT_MS / 1000} s`));
    }, READY_TIMEOUT_MS);
    let buffered = '';
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      reject(
        new Error(`control-plane node 2 ended (${signal ?? `code ${code}`}) before it was ready`),
      );
    };
    child.once('exit', onExit);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line === undefined) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout!.removeAllListeners('data');
      child.stdout!.resume();
      resolve({ url: String((JSON.parse(line) as { url: string }).url), child });
    });
  });
}
