/**
 * Test support for the gateway's cross-process tests: a control plane, an echo provider in
 * this process that counts every call it runs (so a test can check that a refused request
 * never reached it), an app with a key, and `peak gateway` processes started by the real CLI.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { AdminClient } from '../src/admin/index.js';
import { currentContext, remainingTime } from '../src/core/index.js';
import type { GatewayKey } from '../src/gateway/index.js';
import { HttpRegistry } from '../src/registry/index.js';
import { defineService, RpcServer } from '../src/rpc/index.js';
import { PeakServer } from '../src/server/index.js';
import { useLocalCredential } from './support/credentials.js';
import { killGroup, type PeakProcess, spawnPeak } from './support/peak-process.js';

/** The provider the gateway routes to. */
export const echoService = defineService({
  name: 'test.gw-echo',
  version: '1.0.0',
  methods: {
    echo: {
      input: z.object({ n: z.number().int(), s: z.string().max(64) }),
      // What the provider saw of the call context, so a test can check what went through.
      output: z.object({
        n: z.number(),
        s: z.string(),
        caller: z.string(),
        timeoutMs: z.number(),
        traceId: z.string(),
        stress: z.boolean(),
        tags: z.record(z.string(), z.string()),
      }),
    },
    slow: {
      input: z.object({ ms: z.number().int().min(0).max(10_000) }),
      output: z.object({ slept: z.number() }),
    },
  },
});

/** A control plane, a counting provider and a gateway app with a key. */
export interface GatewayFixture {
  dataDir: string;
  server: PeakServer;
  admin: AdminClient;
  registry: HttpRegistry;
  provider: RpcServer;
  /** Calls the provider ran, by method. */
  calls: { echo: number; slow: number };
  key: GatewayKey;
  gateways: PeakProcess[];
  /** Starts `peak gateway` and resolves with its URL. */
  startGateway(extra?: string[]): Promise<string>;
  /** Stops gateway `i` gracefully and starts it again on the same snapshot file; resolves with its URL. */
  restartGateway(i: number): Promise<string>;
  close(): Promise<void>;
}

/** Starts the control plane and the provider, and creates app `partner` with a key. */
export async function gatewayFixture(name: string): Promise<GatewayFixture> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `peak-${name}-`));
  const server = await PeakServer.start({ dataDir, port: 0 });
  // The provider's registry and the other SDK clients send the local app's credential.
  useLocalCredential(server);
  const admin = new AdminClient({ servers: server.info.url, token: server.info.adminToken ?? '' });
  const registry = new HttpRegistry({ servers: server.info.url });
  const calls = { echo: 0, slow: 0 };
  const provider = new RpcServer({ registry, port: 0 }).addService(echoService, {
    echo: ({ n, s }) => {
      calls.echo++;
      const ctx = currentContext();
      return {
        n,
        s,
        caller: ctx?.callerApp ?? '',
        timeoutMs: Math.round(remainingTime()),
        traceId: ctx?.traceId ?? '',
        stress: ctx?.stress === true,
        tags: { ...ctx?.tags },
      };
    },
    slow: async ({ ms }) => {
      calls.slow++;
      await sleep(ms);
      return { slept: ms };
    },
  });
  await provider.start();
  await admin.gateway.putApp({ name: 'partner', description: 'a partner calling the echo API' });
  const key = await admin.gateway.createKey('partner');
  const gateways: PeakProcess[] = [];
  const argsOf: string[][] = [];
  const launch = async (args: string[], at: number) => {
    const p = spawnPeak(args);
    gateways[at] = p;
    const ready = await p.waitFor('ready', 60_000);
    return String(ready.url);
  };
  const fixture: GatewayFixture = {
    dataDir,
    server,
    admin,
    registry,
    provider,
    calls,
    key,
    gateways,
    async startGateway(extra = []) {
      const args = [
        'gateway',
        '--port',
        '0',
        '--server',
        server.info.url,
        '--data',
        dataDir,
        '--snapshot',
        path.join(dataDir, `gw-${argsOf.length}.json`),
        '--json',
        '--log-level',
        'warn',
        ...extra,
      ];
      argsOf.push(args);
      return launch(args, argsOf.length - 1);
    },
    async restartGateway(i) {
      const g = gateways[i]!;
      g.child.kill('SIGTERM');
      await g.exited;
      return launch(argsOf[i]!, i);
    },
    async close() {
      for (const g of gateways) {
        g.child.kill('SIGTERM');
        const t = setTimeout(() => killGroup(g.child), 10_000);
        await g.exited;
        clearTimeout(t);
      }
      await provider.stop();
      await registry.close();
      await fixture.server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return fixture;
}
