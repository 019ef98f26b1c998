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
 * The service processes run as the instances of one `Supervisor` (peakware/scale) in this
 * process: app `shop`, one service per role (`shop.inventory`, `shop.order`, `shop.points`,
 * `shop.coupon`; `instances` each of inventory and order), reporting to the control plane
 * as app `shop.supervisor`, so `peak scale status --app shop` lists them and a scaling
 * policy or a release (`--scale-demo`) changes them. Its pid and log files are in
 * `<data>/shop-supervisor` (an instance's stdout goes to its log, its stderr to the shop's);
 * the chain's instances never outlive the shop (each stops when its parent goes away), so a
 * new chain adopts none of them. The chain waits for each instance's JSON ready line (the
 * supervisor's ready check, {@link READY_TIMEOUT_MS}); a first start that fails fails the
 * chain's start. One that dies before the chain is stopped (a crash, a kill -9) is reported
 * in one line, naming the signal when a signal killed it, once its replacement is ready;
 * the supervisor starts it again with the same settings 100 ms after the death and then a
 * second apart while its starts fail (its shard's PostgreSQL still restarting, say); after
 * {@link RESTART_ATTEMPTS} failed starts the death is reported without a replacement (the
 * supervisor keeps trying; a later replacement is reported again). The gateway is started
 * here, not by the supervisor: it is reported, not restarted (buyers hold its URL). What
 * runs beside the services (redis-server, the order shard's PostgreSQL, a second
 * control-plane node with `controlPlaneNodes: 2`) is watched the same way and started
 * again in the same place (infra-watch.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from 'peakware/admin';
import {
  type RedisClusterProcess,
  type RedisServerProcess,
  redisServerAvailable,
  startRedisCluster,
  startRedisServer,
} from 'peakware/cache';
import { isPeakError, type Logger } from 'peakware/core';
import type { ShardedDatabase } from 'peakware/data';
import type { GuardRules } from 'peakware/guard';
import { type ServiceSpec, Supervisor, type SupervisorEvent } from 'peakware/scale';
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
/** The broker's second message database (PostgreSQL #2), where the order events' topic lives. */
export const SHOP_MESSAGE_DATABASE = 'pg2';

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

/** The app the chain's supervisor reports with (grant `scale:shop.*`: the shop's services' instances, nothing more). */
export const SHOP_SUPERVISOR_APP = 'shop.supervisor';

/** The app the chain's supervisor runs (the namespace of the services' scaling policies). */
export const SHOP_SCALE_APP = 'shop';

/** The supervised services, one per role but the gateway's. */
export const SHOP_SERVICES = ['inventory', 'order', 'points', 'coupon'] as const;

/**
 * A process of the chain and what its ready line said: a supervised instance (its pid is
 * the current one after a restart) or the gateway.
 */
export interface ChainProcess {
  role: Role;
  /** The supervisor's instance id (`shop.order-v1-2`); undefined for the gateway. */
  instance: string | undefined;
  /** Its current pid; undefined while it is down. */
  pid: number | undefined;
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
  /**
   * Put the product cache on a private Redis Cluster of this many masters (the hot stock
   * stays on the single durable Redis: its deductions and their stream are one script).
   * PEAK_CACHE_REDIS_URL (a `redis+cluster://` URL, say) gives one instead. Default none:
   * the product cache shares the stock's Redis.
   */
  cacheCluster?: number;
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
  /** The product cache's Redis when it is not `redisUrl` (a Redis Cluster: `cacheCluster`). */
  cacheRedisUrl: string | undefined;
  orders: ShardedDatabase;
  gatewayUrl: string;
  /** The buyers' API key at the gateway (`x-peak-api-key`). */
  gatewayKey: string;
  /** The payment provider's API key at the gateway (the payment callback, coupon-edge.ts). */
  paymentKey: string;
  /** The chain's processes now: the supervisor's instances (a scale-out's too), then the gateway. */
  readonly processes: ChainProcess[];
  /** The supervisor running the service processes (app `shop`). */
  supervisor: Supervisor;
  /** Instances of the inventory and of the order service each, as started. */
  instances: number;
  /**
   * The command line of a service process in the chain's manner (node, with the CPU
   * profile flags of SHOP_CPU_PROF_DIR): for a release's command.
   */
  serviceCommand(file: string): string;
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

/** Failed starts after a death before the death is reported without a replacement. */
const RESTART_ATTEMPTS = 10;

/** The supervisor's restart delays: 100 ms after a death, then a second apart while starts fail. */
const RESTART_BACKOFF = { initialMs: 100, factor: 10, maxMs: 1000, jitter: 'none' } as const;

/** How long a service process's graceful stop may take before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

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

/** Node's arguments of the chain's processes: SHOP_CPU_PROF_DIR=<dir> writes a V8 CPU profile there when each stops. */
function nodeArgs(): string[] {
  const profileDir = process.env.SHOP_CPU_PROF_DIR;
  return profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
}

/** One argument of a supervisor command line (split on spaces, double quotes group). */
function quoteArg(arg: string): string {
  if (arg.includes('"')) throw new Error(`a path with a double quote cannot be run: ${arg}`);
  return /[\s']/.test(arg) ? `"${arg}"` : arg;
}

/** A service process's command line: `node [profile flags] services/<file>`. */
function serviceCommand(file: string): string {
  return [process.execPath, ...nodeArgs(), path.join(here, 'services', file)]
    .map(quoteArg)
    .join(' ');
}

/** The ready line every process of the chain prints once it serves. */
const isReadyLine = (line: string) => line.includes('"event":"ready"');

/**
 * Starts the gateway (`command`, with node) and waits for its JSON ready line. It joins
 * `gateways` as soon as it is spawned, so a start that fails part-way still stops it.
 */
function startGateway(
  env: NodeJS.ProcessEnv,
  gateways: ChildProcess[],
  command: string[],
): Promise<Record<string, unknown>> {
  const role: Role = 'gateway';
  const child = spawn(process.execPath, [...nodeArgs(), ...command], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  gateways.push(child);
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
      const line = buffered.split('\n').find(isReadyLine);
      if (line !== undefined) {
        clearTimeout(timer);
        child.stdout!.removeAllListeners('data');
        child.stdout!.resume();
        resolve(JSON.parse(line) as Record<string, unknown>);
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
  /** The supervised instances by id (as their events tell), and the gateway's process. */
  const instances = new Map<string, ChainProcess>();
  const gateways: ChildProcess[] = [];
  let gatewayEntry: ChainProcess | undefined;
  let supervisor: Supervisor | undefined;
  let server: PeakServer | undefined;
  let shard1: EmbeddedPostgres | undefined;
  let orders: ShardedDatabase | undefined;
  let redis: RedisServerProcess | undefined;
  let cacheCluster: RedisClusterProcess | undefined;
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
  /** Tells a death: the caller's `onChildDeath`, else a warning in the log. */
  const tell = (d: ChildDeath) =>
    options.onChildDeath === undefined
      ? options.logger.warn(d, `${d.role} process (pid ${d.pid}) died: ${d.how}`)
      : options.onChildDeath(d);
  /** Deaths whose replacement is not ready yet, by instance id, with its failed starts. */
  const pending = new Map<string, { death: ChildDeath; failedStarts: number; told: boolean }>();
  /** The first starts: settled when every one is ready, rejected on the first that fails. */
  let firstStarts:
    | { waiting: Set<string>; resolve: () => void; reject: (err: Error) => void }
    | undefined;
  /** Follows the supervisor's instances (module comment). */
  const onEvent = (e: SupervisorEvent) => {
    const role = e.instance.service.slice('shop.'.length) as Role;
    const id = e.instance.id;
    if (e.type === 'start') {
      const entry = instances.get(id) ?? { role, instance: id, pid: undefined, ready: {} };
      entry.pid = e.instance.pid;
      instances.set(id, entry);
      return;
    }
    const entry = instances.get(id);
    if (e.type === 'ready') {
      if (entry !== undefined)
        entry.ready = e.line === undefined ? {} : (JSON.parse(e.line) as Record<string, unknown>);
      firstStarts?.waiting.delete(id);
      if (firstStarts?.waiting.size === 0) firstStarts.resolve();
      const p = pending.get(id);
      if (p !== undefined) {
        pending.delete(id);
        p.death.restartedAs = e.instance.pid;
        if (!stopping) tell(p.death);
      }
      return;
    }
    // An exit.
    if (entry !== undefined) entry.pid = undefined;
    if (e.expected) {
      instances.delete(id);
      return;
    }
    if (stopping) return;
    const how = howItEnded(e.code, e.signal);
    if (firstStarts?.waiting.has(id) === true) {
      firstStarts.reject(
        new Error(
          e.readyTimedOut
            ? `${role} process not ready in ${READY_TIMEOUT_MS / 1000} s: its log lines above say how far it got (a busy machine starts slower)`
            : `${role} process ended (${how}) before it was ready`,
        ),
      );
      return;
    }
    if (e.ready) {
      const death: ChildDeath = { role, pid: e.instance.pid, how };
      deaths.push(death);
      pending.set(id, { death, failedStarts: 0, told: false });
      return;
    }
    // A start after a death that failed: the supervisor tries again after its backoff.
    const p = pending.get(id);
    if (p === undefined) return;
    p.failedStarts++;
    options.logger.warn(
      {
        instance: id,
        attempt: p.failedStarts,
        how: e.readyTimedOut ? `not ready in ${READY_TIMEOUT_MS / 1000} s` : how,
      },
      `${role} process could not be restarted`,
    );
    if (p.failedStarts >= RESTART_ATTEMPTS && !p.told) {
      p.told = true;
      tell(p.death);
    }
  };
  /** Reports the gateway's death (not restarted: buyers hold its URL). */
  const watchGateway = (child: ChildProcess) =>
    child.once('exit', (code, signal) => {
      if (stopping) return;
      const death: ChildDeath = { role: 'gateway', pid: child.pid, how: howItEnded(code, signal) };
      deaths.push(death);
      if (gatewayEntry !== undefined) gatewayEntry.pid = undefined;
      tell(death);
    });
  const stop = async () => {
    stopping = true;
    firstStarts?.reject(new Error('the chain was stopped while its services started'));
    // A death whose replacement never got ready is told as it is (no replacement).
    for (const p of pending.values()) if (!p.told) tell(p.death);
    pending.clear();
    await Promise.all(gateways.map(stopChild));
    await supervisor
      ?.stop()
      .catch((err: unknown) =>
        options.logger.warn({ err: String(err) }, 'stopping the supervised services failed'),
      );
    // The second control-plane node after its clients, before the PostgreSQL it uses.
    if (node2 !== undefined) await stopChild(node2.child);
    await stock?.close().catch(() => undefined);
    await shopPool?.end().catch(() => undefined);
    await orders?.close().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    await cacheCluster?.stop().catch(() => undefined);
    // The control plane before PostgreSQL #2: its broker keeps the order events there.
    const stopped = (await server?.stop()) ?? true;
    await shard1?.stop().catch(() => undefined);
    return stopped;
  };
  try {
    // PostgreSQL #2 first: it holds half the order shards and, as the broker's second message
    // database, the order events' topic (the broker tier's writes split over both).
    const dataDir = path.resolve(options.dataDir);
    const shardDir = path.join(dataDir, 'order-shard-1');
    await mkdir(shardDir, { recursive: true });
    // Passable for PostgreSQL's OS user (as the control plane's start makes it for its own
    // cluster), so the shard's cluster stays in the data folder rather than /var/lib.
    const mode = (await stat(dataDir)).mode;
    if ((mode & 0o001) === 0) await chmod(dataDir, (mode & 0o777) | 0o711);
    shard1 = new EmbeddedPostgres({ dataDir: shardDir, logger: options.logger });
    const shard1Endpoint = await shard1.start();
    const shopDb2 = endpointUrl(shard1Endpoint);
    server = await PeakServer.start({
      dataDir: options.dataDir,
      port: options.port,
      logger: options.logger,
      // SLA rules are evaluated every 2 s (the default is 10 s) so a 30 s sale shows them.
      telemetry: { alertIntervalMs: 2000 },
      localApps: { ...SHOP_APPS, [SHOP_SUPERVISOR_APP]: ['scale:shop.*'] },
      // Scaling and releases decide every second (default 5 s), for --scale-demo's sale.
      scale: { intervalMs: 1000 },
      mq: { databases: { [SHOP_MESSAGE_DATABASE]: shopDb2 } },
    });
    const started = server;
    const credential = (role: Exclude<Role, 'gateway'>) => ({
      PEAK_CREDENTIAL: started.credential(`shop.${role}`),
    });
    const shopDb = server.postgresUrl();
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
    // The product cache on a Redis Cluster, when asked: the key-value load spread over
    // masters, as a shop whose catalogue outgrows one Redis runs it.
    let cacheRedisUrl = process.env.PEAK_CACHE_REDIS_URL || undefined;
    if (cacheRedisUrl === undefined && (options.cacheCluster ?? 0) > 0) {
      // Ctrl-C reaches the services, not the cluster: it stops after them (stop() below).
      cacheCluster = await startRedisCluster({
        masters: options.cacheCluster,
        ownProcessGroup: true,
      });
      cacheRedisUrl = cacheCluster.url;
    }
    shopPool = new pg.Pool({ connectionString: shopDb, max: 4 });
    // An idle client's error (PostgreSQL restarted or stopping) is reported on the pool; the
    // client is dropped and the next query opens another, as the services' pools do.
    shopPool.on('error', () => undefined);
    const shadow = options.stressBeside === true;
    stock = openStressAwareStock(shopPool, redisUrl, { writer: false, shadow });
    // The order events on PostgreSQL #2 (the broker's second message database), the rare
    // compensations on the control plane's own.
    await admin.mq.createTopic({
      name: ORDER_PLACED_TOPIC,
      queues: 4,
      database: SHOP_MESSAGE_DATABASE,
    });
    await admin.mq.createTopic({ name: ORDER_COMPENSATE_TOPIC, queues: 4 });
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
        // The same message databases as the first node (every node names the same ones).
        mqDatabases: { [SHOP_MESSAGE_DATABASE]: shopDb2 },
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
      SHOP_CACHE_REDIS: cacheRedisUrl ?? '',
      ...(options.limits === 'lifted' ? { SHOP_DEDUCT_CONCURRENCY: '100000' } : {}),
      ...(shadow ? { SHOP_SHADOW: '1' } : {}),
    };
    const count = options.instances ?? 2;
    const counts: Record<(typeof SHOP_SERVICES)[number], number> = {
      inventory: count,
      order: count,
      points: 1,
      coupon: 1,
    };
    // What a previous run on this data folder left on the control plane (a count set, the
    // scale demo's policy, a release cut short) must not change this chain's instances.
    await resetScaleState(admin, counts, options.logger);
    const stateDir = path.join(server.info.dataDir, 'shop-supervisor');
    await clearPidFiles(stateDir);
    const services: ServiceSpec[] = SHOP_SERVICES.map((role) => ({
      name: `shop.${role}`,
      // The order processes take their order-id worker id from their slot (32 + slot).
      command: serviceCommand(
        role === 'order' ? 'supervised-order-service.js' : `${role}-service.js`,
      ),
      instances: counts[role],
      version: 'v1',
      stopTimeoutMs: STOP_TIMEOUT_MS,
      env: { ...env, ...credential(role) },
    }));
    const ready = new Promise<void>((resolve, reject) => {
      firstStarts = {
        waiting: new Set(
          SHOP_SERVICES.flatMap((role) =>
            Array.from({ length: counts[role] }, (_, i) => `shop.${role}-v1-${i + 1}`),
          ),
        ),
        resolve,
        reject,
      };
    });
    supervisor = new Supervisor({
      spec: { app: SHOP_SCALE_APP, cwd: here, services },
      stateDir,
      servers: controlPlaneUrls,
      token: server.credential(SHOP_SUPERVISOR_APP),
      tickMs: 100,
      restartBackoff: RESTART_BACKOFF,
      ready: { line: isReadyLine, timeoutMs: READY_TIMEOUT_MS },
      stderr: 'inherit',
      // The chain tells exits and failed restarts itself, in its own words.
      logger: withoutExitWarnings(options.logger),
      onEvent,
    });
    // Marked handled at once: a first start may fail while start() still runs.
    ready.catch(() => undefined);
    await supervisor.start();
    await ready;
    firstStarts = undefined;
    // The edge: `peak gateway`, following the shop's guard rules item, serving the route
    // and app published here (buyers call with an API key).
    const gatewayKey = await publishEdge(admin);
    const paymentKey = await publishPaymentCallback(admin);
    const gatewayReady = await startGateway({}, gateways, [
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
    const gatewayChild = gateways[0]!;
    gatewayEntry = {
      role: 'gateway',
      instance: undefined,
      pid: gatewayChild.pid,
      ready: gatewayReady,
    };
    watchGateway(gatewayChild);
    const running = supervisor;
    const gatewayProcess = gatewayEntry;
    return {
      server,
      serviceEnv: env,
      shopDb,
      shopPool,
      stock,
      redisUrl,
      cacheRedisUrl,
      orders,
      gatewayUrl: String(gatewayReady.url),
      gatewayKey,
      paymentKey,
      get processes() {
        return [...instances.values(), gatewayProcess];
      },
      supervisor: running,
      instances: count,
      serviceCommand,
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

/** Whether `err` is the control plane's "not found" (no policy, no release stored). */
const notFound = (err: unknown) =>
  isPeakError(err) && (err.code === 'PEAK_SCALE_NOT_FOUND' || err.code === 'PEAK_NOT_FOUND');

/**
 * Puts the control plane's scaling state of app `shop` back to the chain's counts: a count
 * set on a previous run (`peak scale set`, the demo's scale-in) is set again, a stored
 * scaling policy (`--scale-demo`'s) is pinned to the count (min = max), a release left
 * running or paused (a run killed mid-demo) is aborted. `--scale-demo` sets its own after.
 */
async function resetScaleState(
  admin: AdminClient,
  counts: Record<(typeof SHOP_SERVICES)[number], number>,
  logger: Logger,
): Promise<void> {
  const status = await admin.scale.status(SHOP_SCALE_APP);
  for (const role of SHOP_SERVICES) {
    const service = `shop.${role}`;
    const n = counts[role];
    const release = await admin.scale.release(SHOP_SCALE_APP, service).catch((err: unknown) => {
      if (notFound(err)) return undefined;
      throw err;
    });
    if (release?.state === 'running' || release?.state === 'paused')
      await admin.scale.releaseAction(SHOP_SCALE_APP, service, 'abort', {
        author: 'shop',
        reason: 'left by a previous run of the shop',
      });
    const stored = await admin.scale.policy(SHOP_SCALE_APP, service).catch((err: unknown) => {
      if (notFound(err)) return undefined;
      throw err;
    });
    if (stored !== undefined && (stored.policy.min !== n || stored.policy.max !== n))
      await admin.scale.setPolicy(
        SHOP_SCALE_APP,
        service,
        { ...stored.policy, min: n, max: n },
        'shop start: the chain runs its own count',
      );
    const desired = status.services.find((s) => s.service === service)?.desired;
    if (desired !== null && desired !== undefined && desired !== n) {
      logger.info({ service, from: desired, to: n }, 'count of a previous run set back');
      await admin.scale.setInstances(SHOP_SCALE_APP, service, n, 'shop start');
    }
  }
}

/** Removes the pid files of a previous chain (its instances stopped with it: none to adopt). */
async function clearPidFiles(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir))
    if (name.endsWith('.json')) await rm(path.join(dir, name), { force: true });
}

/** The supervisor's warnings on exits and failed starts, which the chain tells itself. */
const CHAIN_TELLS = new Set([
  'instance exited; restarting after backoff',
  'instance not ready in time; SIGKILL',
]);

/** `logger` with the warnings of {@link CHAIN_TELLS} written at debug instead. */
function withoutExitWarnings(logger: Logger): Logger {
  const warn: Logger['warn'] = (first: object | string, ...rest: unknown[]) => {
    const message = typeof first === 'string' ? first : rest[0];
    if (typeof message === 'string' && CHAIN_TELLS.has(message))
      (logger.debug as (...args: unknown[]) => void)(first, ...rest);
    else (logger.warn as (...args: unknown[]) => void)(first, ...rest);
  };
  return new Proxy(logger, {
    get: (target, prop, receiver) => (prop === 'warn' ? warn : Reflect.get(target, prop, receiver)),
  });
}
