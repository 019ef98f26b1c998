/**
 * Starting and stopping the whole buy chain: the control plane (`peak server` on the
 * embedded PostgreSQL #1), a second embedded PostgreSQL for half of the order shards, the
 * shop's tables and topics, the guard rules in the config center, and one process per
 * service instance plus the gateway. `main.ts` runs a flash sale or a capacity run on it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from 'peakware/admin';
import type { Logger } from 'peakware/core';
import type { ShardedDatabase } from 'peakware/data';
import type { GuardRules } from 'peakware/guard';
import { EmbeddedPostgres, PeakServer, type PostgresEndpoint } from 'peakware/server';
import { ORDER_COMPENSATE_TOPIC, ORDER_PLACED_TOPIC } from './catalog.js';
import { BUY_RESOURCE, flashSaleRules } from './gateway.js';
import { createOrderTables, openOrders } from './order-store.js';
import { seedFlashSale } from './shop-database.js';

/** What a process of the chain is. */
export type Role = 'inventory' | 'order' | 'points' | 'gateway';

/** A process of the chain and what its ready line said. */
export interface ChainProcess {
  role: Role;
  child: ChildProcess;
  ready: Record<string, unknown>;
}

/** How to start the chain. */
export interface ChainOptions {
  dataDir: string;
  port: number;
  logger: Logger;
  hotSku: string;
  regularSku: string;
  /** Units of the hot item on sale. */
  stock: number;
  /**
   * `flash-sale`: the shop's limits (hot-item QPS, deducts in flight); `lifted`: limits no
   * load here reaches, so a capacity run measures the chain and not the rules.
   */
  limits: 'flash-sale' | 'lifted';
  /** Fraction of traces each process keeps (errors and slow calls are always kept). */
  sampleRatio: number;
}

/** A running chain. */
export interface Chain {
  server: PeakServer;
  /** The PostgreSQL of the control plane, which also holds schema `shop` and shard ds0. */
  shopDb: string;
  orders: ShardedDatabase;
  gatewayUrl: string;
  processes: ChainProcess[];
  /** Pids of the two postmasters: control plane's (#1) and the second shard's (#2). */
  postgresPids: { primary: number | undefined; shard1: number | undefined };
  /** The control plane's typed admin API, with the admin token. */
  admin: AdminClient;
  /** Stops the gateway first (no buy reaches a stopping service), then the rest; true if clean. */
  stop(): Promise<boolean>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** The rules of a capacity run: the flash-sale rule set with counts nothing here reaches. */
function liftedRules(): GuardRules {
  return {
    flow: [{ resource: BUY_RESOURCE, count: 1_000_000 }],
    system: [{ maxConcurrency: 100_000 }],
  };
}

/** A connection URL for an embedded instance's endpoint. */
function endpointUrl(e: PostgresEndpoint): string {
  return `postgres://${encodeURIComponent(e.user)}:${encodeURIComponent(e.password)}@${e.host}:${e.port}/${e.database}`;
}

/** The admin API of `server`, with the admin token read from its data folder. */
function adminOf(server: PeakServer): AdminClient {
  const tokenFile = server.info.adminTokenFile;
  return new AdminClient({
    servers: server.info.url,
    token: async () => (await readFile(tokenFile, 'utf8')).trim(),
  });
}

/**
 * Starts one process of the chain (`services/<role>-service.js`) and waits for its JSON
 * ready line. The child joins `processes` as soon as it is spawned, so a start that fails
 * part-way still stops everything it started.
 */
function startProcess(
  role: Role,
  env: NodeJS.ProcessEnv,
  processes: ChainProcess[],
): Promise<ChainProcess> {
  const args = [path.join(here, 'services', `${role}-service.js`)];
  // SHOP_CPU_PROF_DIR=<dir>: every process writes a V8 CPU profile there when it stops.
  const profileDir = process.env.SHOP_CPU_PROF_DIR;
  if (profileDir !== undefined) args.unshift('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const entry: ChainProcess = { role, child, ready: {} };
  processes.push(entry);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} process not ready in 30 s`)), 30_000);
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line !== undefined) {
        clearTimeout(timer);
        child.stdout!.removeAllListeners('data');
        child.stdout!.resume();
        entry.ready = JSON.parse(line) as Record<string, unknown>;
        resolve(entry);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} process exited with code ${code} before it was ready`));
    });
  });
}

function stopChild(c: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
  });
}

/** Starts the chain; on a failure part-way, stops what it started and rethrows. */
export async function startChain(options: ChainOptions): Promise<Chain> {
  const processes: ChainProcess[] = [];
  let server: PeakServer | undefined;
  let shard1: EmbeddedPostgres | undefined;
  let orders: ShardedDatabase | undefined;
  const stop = async () => {
    const gateway = processes.find((p) => p.role === 'gateway');
    if (gateway !== undefined) await stopChild(gateway.child);
    await Promise.all(processes.filter((p) => p !== gateway).map((p) => stopChild(p.child)));
    await orders?.close().catch(() => undefined);
    await shard1?.stop().catch(() => undefined);
    return (await server?.stop()) ?? true;
  };
  try {
    server = await PeakServer.start({
      dataDir: options.dataDir,
      port: options.port,
      logger: options.logger,
      // SLA rules are evaluated every 2 s (the default is 10 s) so a 30 s sale shows them.
      telemetry: { alertIntervalMs: 2000 },
    });
    const shopDb = server.postgresUrl();
    const shardDir = path.join(server.info.dataDir, 'order-shard-1');
    await mkdir(shardDir, { recursive: true });
    shard1 = new EmbeddedPostgres({ dataDir: shardDir, logger: options.logger });
    const shopDb2 = endpointUrl(await shard1.start());
    await createOrderTables({ ds0: shopDb, ds1: shopDb2 });
    orders = await openOrders({ ds0: shopDb, ds1: shopDb2 }, 4);
    const admin = adminOf(server);
    for (const topic of [ORDER_PLACED_TOPIC, ORDER_COMPENSATE_TOPIC]) {
      await admin.mq.createTopic({ name: topic, queues: 4 });
    }
    await seedFlashSale(shopDb, orders, options.hotSku, options.stock);
    await seedFlashSale(shopDb, orders, options.regularSku, 1_000_000_000);
    // The guard rules are in the config center before the gateway starts and reads them.
    const rules = options.limits === 'lifted' ? liftedRules() : flashSaleRules(options.hotSku);
    await admin.config.publish(
      { app: 'shop', group: 'governance', key: 'guard-rules' },
      {
        value: JSON.stringify(rules),
        format: 'json',
        schema: { $peak: 'guard-rules' },
        comment: `${options.limits} limits set by the shop at start`,
        author: 'shop',
      },
    );
    const env = {
      PEAK_SERVER: server.info.url,
      SHOP_DB: shopDb,
      SHOP_DB_2: shopDb2,
      SHOP_SAMPLE_RATIO: String(options.sampleRatio),
      ...(options.limits === 'lifted' ? { SHOP_DEDUCT_CONCURRENCY: '100000' } : {}),
    };
    const roles = ['inventory', 'inventory', 'order', 'order', 'points'] as const;
    await Promise.all(
      roles.map((role, i) => startProcess(role, { ...env, WORKER_ID: String(i + 1) }, processes)),
    );
    const gateway = await startProcess(
      'gateway',
      { PEAK_SERVER: server.info.url, SHOP_SAMPLE_RATIO: env.SHOP_SAMPLE_RATIO },
      processes,
    );
    const started = server;
    return {
      server,
      shopDb,
      orders,
      gatewayUrl: String(gateway.ready.url),
      processes,
      postgresPids: { primary: started.postgresPid, shard1: shard1.pid },
      admin,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
