/**
 * Starting and stopping the whole buy chain: the control plane (`peak server` on the
 * embedded PostgreSQL #1), a second embedded PostgreSQL for half of the order shards, a
 * private redis-server for the cache tier (when one is on PATH and PEAK_REDIS_URL is not
 * set; without Redis the shop runs its PostgreSQL stock engine and L1-only caches), the
 * shop's tables and topics, the guard rules and cache switches in the config center, and
 * one process per service instance, and `peak gateway` as the edge (its route, app, key and
 * subscription published through the admin client). Each service is an app of its own with
 * only the grants it needs ({@link SHOP_APPS}); the control plane keeps their credentials in
 * its data folder and each process gets its app's as PEAK_CREDENTIAL (the gateway reads the
 * admin token from the data folder). `main.ts` runs a flash sale or a
 * capacity run on it.
 *
 * The chain supervises its service processes: one that dies before the chain is stopped
 * (a crash, a kill -9) is reported in one line, naming the signal when a signal killed
 * it, and started again with the same settings; the gateway is reported, not restarted
 * (buyers hold its URL). What runs beside the services (redis-server, the order shard's
 * PostgreSQL, a second control-plane node with `controlPlaneNodes: 2`) is watched the same
 * way and started again in the same place (infra-watch.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from 'peakware/admin';
import { type RedisServerProcess, redisServerAvailable, startRedisServer } from 'peakware/cache';
import type { Logger } from 'peakware/core';
import type { ShardedDatabase } from 'peakware/data';
import type { GuardRules } from 'peakware/guard';
import { EmbeddedPostgres, PeakServer, type PostgresEndpoint } from 'peakware/server';
import pg from 'pg';
import { ORDER_COMPENSATE_TOPIC, ORDER_PLACED_TOPIC, POINTS_GROUP } from './catalog.js';
import {
  type ControlPlaneNode,
  freeLoopbackPort,
  startControlPlaneNode,
} from './control-plane-node.js';
import { publishPaymentCallback } from './coupon-edge.js';
import { installCouponChain } from './coupon-store.js';
import { BUY_RESOURCE, flashSaleRules, publishEdge } from './edge.js';
import { type InfraRole, pidGone, watchInfra } from './infra-watch.js';
import { createOrderTables, openOrders } from './order-store.js';
import { openStressAwareStock } from './shadow-stock.js';
import { seedFlashSale } from './shop-database.js';
import type { ShopStock } from './stock.js';
import { createShadowTables } from './stress-beside.js';

/** What a process of the chain is. */
export type Role = 'inventory' | 'order' | 'points' | 'coupon' | 'gateway';

/** Each role's app (`shop.<role>`) and what its credential may do, nothing more. */
export const SHOP_APPS: Readonly<Record<`shop.${Exclude<Role, 'gateway'>}`, readonly string[]>> = {
  'shop.inventory': [
    'register:shop.inventory',
    'register:shop.inventory-tcc',
    `consume:${ORDER_COMPENSATE_TOPIC}/shop.inventory-compensation`,
    'read-config:shop/*',
    'telemetry:shop.*',
    'drill',
  ],
  'shop.order': [
    'register:shop.order',
    'register:shop.order-tcc',
    // Coupon orders: TCCs and two-phase messages whose branches call only the shop's services.
    'txn:shop.*',
    `produce:${ORDER_PLACED_TOPIC}`,
    `produce:${ORDER_COMPENSATE_TOPIC}`,
    'read-config:shop/*',
    'telemetry:shop.*',
    'drill',
  ],
  'shop.points': [
    'register:shop.points',
    `consume:${ORDER_PLACED_TOPIC}/${POINTS_GROUP}`,
    'read-config:shop/*',
    'telemetry:shop.*',
  ],
  'shop.coupon': ['register:shop.coupon', 'read-config:shop/*', 'telemetry:shop.*'],
};

/** The app `--scale-demo`'s supervisor reports with (grant `scale:shop.*`: the shop's services' instances, nothing more). */
export const SHOP_SUPERVISOR_APP = 'shop.supervisor';

/** A process of the chain and what its ready line said (the child is replaced on a restart). */
export interface ChainProcess {
  role: Role;
  child: ChildProcess;
  ready: Record<string, unknown>;
}

/** A service process that died while the chain ran, and what took its place. */
export interface ChildDeath {
  role: Role | InfraRole;
  pid: number | undefined;
  /** How it ended: `exit code N`, or `killed by SIGKILL`. */
  how: string;
  /** The pid of the process started in its place, when one was. */
  restartedAs?: number;
}

/** How a child process ended, for a message: `exit code N` or `killed by SIGNAL`. */
export function howItEnded(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exit code ${code}`;
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
  /** Processes of the inventory and of the order service each. Default 2. */
  instances?: number;
  /** Use Redis for the cache tier and the hot stock (default: when redis-server is on PATH). */
  redis?: boolean;
  /** Told of each process that died while the chain ran (default: a warning in the log). */
  onChildDeath?: (death: ChildDeath) => void;
  /** Ready the chain for stress traffic: shadow tables, shadow stock, shadow points consumer. */
  stressBeside?: boolean;
  /**
   * Control-plane nodes: 1 (default, in this process) or 2 (a second `peak server` process
   * on the same PostgreSQL, listed first by every service and the gateway; control-plane-node.ts).
   */
  controlPlaneNodes?: number;
}

/** A running chain. */
export interface Chain {
  server: PeakServer;
  /** The environment every service process of the chain is started with. */
  serviceEnv: Record<string, string>;
  /** The PostgreSQL of the control plane, which also holds schema `shop` and shard ds0. */
  shopDb: string;
  /** A small pool on the shop database, for seeding, books and the compensation sweep. */
  shopPool: pg.Pool;
  /** The stock engine as the books see it (no writer here: the inventory processes run them). */
  stock: ShopStock;
  /** The cache tier's Redis URL, or undefined when the shop runs without Redis. */
  redisUrl: string | undefined;
  orders: ShardedDatabase;
  gatewayUrl: string;
  /** The buyers' API key at the gateway (`x-peak-api-key`). */
  gatewayKey: string;
  /** The payment provider's API key at the gateway (the payment callback, coupon-edge.ts). */
  paymentKey: string;
  processes: ChainProcess[];
  /** Pids of the two postmasters: control plane's (#1) and the second shard's (#2, the current one after a restart). */
  readonly postgresPids: { primary: number | undefined; shard1: number | undefined };
  /** Pid of the chain's own redis-server, when it started one (the current one after a restart). */
  readonly redisPid: number | undefined;
  /** The control-plane URLs the services and the gateway use, in their order of preference. */
  controlPlaneUrls: string[];
  /** Pid of the second control-plane node (`controlPlaneNodes: 2`), while it runs. */
  readonly controlPlane2Pid: number | undefined;
  /** The control plane's typed admin API, with the admin token. */
  admin: AdminClient;
  /** Processes that died while the chain ran, in order (each service one restarted). */
  deaths: ChildDeath[];
  /** Stops the gateway first (no buy reaches a stopping service), then the rest; true if clean. */
  stop(): Promise<boolean>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** How many times a service process that died is started before the chain gives up on it. */
const RESTART_ATTEMPTS = 10;

/** How long a process of the chain may take to print its ready line (a loaded machine is slow). */
const READY_TIMEOUT_MS = 90_000;

/** The products on sale: the sale price is computed before the sale opens. */
const PRODUCTS: Record<string, { name: string; priceCents: number; salePriceCents: number }> = {
  hot: { name: 'Flash phone', priceCents: 99_900, salePriceCents: 59_900 },
  regular: { name: 'USB cable', priceCents: 1_500, salePriceCents: 1_500 },
};

/**
 * The promotion window's cache switches (Mogujie's peak plan): product copies live at most
 * a minute in each process, and product writes are frozen while the sale runs.
 */
export const PROMOTION_CACHE_SETTINGS = { l1TtlMs: 60_000, freezeWrites: true } as const;

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

/** The `peak` CLI of the installed peakware package. */
const peakCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('peakware/package.json')),
  'bin',
  'peak.js',
);

/**
 * Starts one process of the chain (`services/<role>-service.js`, or `command`) and waits
 * for its JSON ready line. The child joins `processes` as soon as it is spawned, so a start that fails
 * part-way still stops everything it started.
 */
function startProcess(
  role: Role,
  env: NodeJS.ProcessEnv,
  processes: ChainProcess[],
  command: string[] = [path.join(here, 'services', `${role}-service.js`)],
  into?: ChainProcess,
): Promise<ChainProcess> {
  const args = [...command];
  // SHOP_CPU_PROF_DIR=<dir>: every process writes a V8 CPU profile there when it stops.
  const profileDir = process.env.SHOP_CPU_PROF_DIR;
  if (profileDir !== undefined) args.unshift('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const entry: ChainProcess = into ?? { role, child, ready: {} };
  entry.child = child;
  if (into === undefined) processes.push(entry);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `${role} process not ready in ${READY_TIMEOUT_MS / 1000} s: its log lines above say how far it got (a busy machine starts slower)`,
          ),
        ),
      READY_TIMEOUT_MS,
    );
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
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${role} process ended (${howItEnded(code, signal)}) before it was ready`));
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
  let redis: RedisServerProcess | undefined;
  let shopPool: pg.Pool | undefined;
  let stock: ShopStock | undefined;
  let node2: ControlPlaneNode | undefined;
  let stopping = false;
  const deaths: ChildDeath[] = [];
  /** Watches `role` (infra-watch.ts): its deaths are told as a service process's are. */
  const watch = (
    role: InfraRole,
    pid: () => number | undefined,
    ended: () => Promise<string>,
    restart: () => Promise<number | undefined>,
  ) =>
    watchInfra(
      { role, pid, ended, restart },
      {
        stopping: () => stopping,
        logger: options.logger,
        onDeath: (death) => {
          deaths.push(death);
          if (options.onChildDeath === undefined)
            options.logger.warn(
              death,
              `${death.role} process (pid ${death.pid}) died: ${death.how}`,
            );
          else options.onChildDeath(death);
        },
      },
    );
  /** Restarts a service process that died while the chain runs (module comment). */
  const supervise = (entry: ChainProcess, env: NodeJS.ProcessEnv, command?: string[]) => {
    const child = entry.child;
    child.once('exit', (code, signal) => {
      if (stopping) return;
      const death: ChildDeath = { role: entry.role, pid: child.pid, how: howItEnded(code, signal) };
      deaths.push(death);
      const tell = (d: ChildDeath) =>
        options.onChildDeath === undefined
          ? options.logger.warn(d, `${d.role} process (pid ${d.pid}) died: ${d.how}`)
          : options.onChildDeath(d);
      if (entry.role === 'gateway') return tell(death);
      // A start that fails (its shard's PostgreSQL still restarting, say) is tried again.
      const restart = (attempt: number) =>
        startProcess(entry.role, env, processes, command, entry).then(
          (restarted) => {
            death.restartedAs = restarted.child.pid;
            tell(death);
            if (stopping) stopChild(restarted.child).catch(() => undefined);
            else supervise(restarted, env, command);
          },
          (err: unknown) => {
            options.logger.warn(
              { err: String(err), attempt },
              `${entry.role} process could not be restarted`,
            );
            if (stopping || attempt >= RESTART_ATTEMPTS) tell(death);
            else setTimeout(() => restart(attempt + 1), 1000);
          },
        );
      restart(1);
    });
  };
  const stop = async () => {
    stopping = true;
    const gateway = processes.find((p) => p.role === 'gateway');
    if (gateway !== undefined) await stopChild(gateway.child);
    await Promise.all(processes.filter((p) => p !== gateway).map((p) => stopChild(p.child)));
    // The second control-plane node after its clients, before the PostgreSQL it uses.
    if (node2 !== undefined) await stopChild(node2.child);
    await stock?.close().catch(() => undefined);
    await shopPool?.end().catch(() => undefined);
    await orders?.close().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
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
      localApps: { ...SHOP_APPS, [SHOP_SUPERVISOR_APP]: ['scale:shop.*'] },
      // Scaling and releases decide every second (default 5 s), for --scale-demo's sale.
      scale: { intervalMs: 1000 },
    });
    const started = server;
    const credential = (role: Exclude<Role, 'gateway'>) => ({
      PEAK_CREDENTIAL: started.credential(`shop.${role}`),
    });
    const shopDb = server.postgresUrl();
    const shardDir = path.join(server.info.dataDir, 'order-shard-1');
    await mkdir(shardDir, { recursive: true });
    shard1 = new EmbeddedPostgres({ dataDir: shardDir, logger: options.logger });
    const shard1Endpoint = await shard1.start();
    const shopDb2 = endpointUrl(shard1Endpoint);
    watch(
      'order-shard-postgres',
      () => shard1?.pid,
      () => pidGone(shard1?.pid).then(() => 'gone (its postmaster ended)'),
      async () => {
        // The same folder and port: crash recovery, and every connection string still holds.
        // Crash recovery on a loaded machine may outlast the default minute; a start that
        // timed out is killed, so the next attempt would recover from scratch.
        const again = new EmbeddedPostgres({
          dataDir: shardDir,
          logger: options.logger,
          port: shard1Endpoint.port,
          startTimeoutMs: 180_000,
        });
        await again.start();
        // A stop that came meanwhile stopped the dead one: stop this one too.
        if (stopping) await again.stop();
        else shard1 = again;
        return again.pid;
      },
    );
    await createOrderTables({ ds0: shopDb, ds1: shopDb2 });
    orders = await openOrders({ ds0: shopDb, ds1: shopDb2 }, 4);
    const admin = adminOf(server);
    // The cache tier: PEAK_REDIS_URL, else a private redis-server whose append-only file is
    // written before each reply (an acknowledged stock deduction survives a kill -9 of Redis;
    // no fsync on the buy's path: 'always' took the deduction from 1.5 to 9–11 ms mean and
    // the chain's p99 at 100 buys/s from 55 to 120 ms on this shared disk), else none.
    const wantRedis = options.redis ?? true;
    let redisUrl = wantRedis ? process.env.PEAK_REDIS_URL || undefined : undefined;
    if (wantRedis && redisUrl === undefined && redisServerAvailable()) {
      redis = await startRedisServer({
        durability: 'write',
        dir: path.join(server.info.dataDir, 'redis'),
        // Ctrl-C reaches the services, not Redis: it stops after them (stop() below).
        ownProcessGroup: true,
      });
      redisUrl = redis.url;
      const first = redis;
      watch(
        'redis',
        () => redis?.pid,
        () => pidGone(redis?.pid).then(() => 'gone (its pid ended)'),
        async () => {
          // The same port and folder: the append-only file brings back every acknowledged deduction.
          const again = await startRedisServer({
            durability: 'write',
            dir: first.dir,
            port: first.port,
            ownProcessGroup: true,
          });
          if (stopping) await again.stop();
          else redis = again;
          return again.pid;
        },
      );
    }
    shopPool = new pg.Pool({ connectionString: shopDb, max: 4 });
    const shadow = options.stressBeside === true;
    stock = openStressAwareStock(shopPool, redisUrl, { writer: false, shadow });
    for (const topic of [ORDER_PLACED_TOPIC, ORDER_COMPENSATE_TOPIC]) {
      await admin.mq.createTopic({ name: topic, queues: 4 });
    }
    await seedFlashSale(
      shopPool,
      stock,
      orders,
      { sku: options.hotSku, ...PRODUCTS.hot! },
      options.stock,
    );
    await seedFlashSale(
      shopPool,
      stock,
      orders,
      { sku: options.regularSku, ...PRODUCTS.regular! },
      1_000_000_000,
    );
    // The coupon chain: coupons and payments, and the txn barrier in every branch's database.
    await installCouponChain(shopPool, [shopDb, shopDb2]);
    if (shadow)
      await createShadowTables(shopPool, { ds0: shopDb, ds1: shopDb2 }, server.info.dataDir);
    await admin.config.publish(
      { app: 'shop', group: 'cache', key: 'products' },
      {
        value: JSON.stringify(PROMOTION_CACHE_SETTINGS),
        format: 'json',
        comment: 'promotion window: one-minute local copies, product writes frozen',
        author: 'shop',
      },
    );
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
    // With two control-plane nodes every client lists the second first: its death moves them all.
    if ((options.controlPlaneNodes ?? 1) >= 2) {
      const node2Options = {
        postgresUrl: server.postgresUrl(),
        dataDir: path.join(server.info.dataDir, 'control-plane-2'),
        port: await freeLoopbackPort(),
      };
      node2 = await startControlPlaneNode(node2Options);
      watch(
        'control-plane',
        () => node2?.child.pid,
        () => {
          const child = node2!.child;
          return new Promise<string>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null)
              resolve(howItEnded(child.exitCode, child.signalCode));
            else child.once('exit', (code, signal) => resolve(howItEnded(code, signal)));
          });
        },
        async () => {
          const again = await startControlPlaneNode(node2Options);
          if (stopping) await stopChild(again.child);
          else node2 = again;
          return again.child.pid;
        },
      );
    }
    const controlPlaneUrls = node2 === undefined ? [server.info.url] : [node2.url, server.info.url];
    const env = {
      PEAK_SERVER: controlPlaneUrls.join(','),
      SHOP_DB: shopDb,
      SHOP_DB_2: shopDb2,
      SHOP_SAMPLE_RATIO: String(options.sampleRatio),
      SHOP_REDIS: redisUrl ?? '',
      ...(options.limits === 'lifted' ? { SHOP_DEDUCT_CONCURRENCY: '100000' } : {}),
      ...(shadow ? { SHOP_SHADOW: '1' } : {}),
    };
    const instances = options.instances ?? 2;
    const roles: Exclude<Role, 'gateway'>[] = [
      ...Array<'inventory'>(instances).fill('inventory'),
      ...Array<'order'>(instances).fill('order'),
      'points',
      'coupon',
    ];
    await Promise.all(
      roles.map(async (role, i) => {
        const childEnv = { ...env, ...credential(role), WORKER_ID: String(i + 1) };
        supervise(await startProcess(role, childEnv, processes), childEnv);
      }),
    );
    // The edge: `peak gateway`, following the shop's guard rules item, serving the route
    // and app published here (buyers call with an API key).
    const gatewayKey = await publishEdge(admin);
    const paymentKey = await publishPaymentCallback(admin);
    const gateway = await startProcess('gateway', {}, processes, [
      peakCli,
      'gateway',
      '--port',
      '0',
      '--server',
      controlPlaneUrls.join(','),
      '--data',
      server.info.dataDir,
      '--config-app',
      'shop',
      '--service',
      'shop.gateway',
      '--sample',
      String(options.sampleRatio),
      '--log-level',
      'warn',
      '--json',
      ...(redisUrl === undefined ? [] : ['--redis', redisUrl]),
    ]);
    supervise(gateway, {});
    return {
      server,
      serviceEnv: env,
      shopDb,
      shopPool,
      stock,
      redisUrl,
      orders,
      gatewayUrl: String(gateway.ready.url),
      gatewayKey,
      paymentKey,
      processes,
      get postgresPids() {
        return { primary: started.postgresPid, shard1: shard1?.pid };
      },
      get redisPid() {
        return redis?.pid;
      },
      controlPlaneUrls,
      get controlPlane2Pid() {
        return node2?.child.pid;
      },
      admin,
      deaths,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
