/**
 * A private `redis-server` (the Debian/Homebrew package on PATH) on a free loopback port in
 * a temp folder, for tests, benchmarks and the shop when no `PEAK_REDIS_URL` is given: the
 * cache tier's counterpart of the embedded PostgreSQL. Peakware does not ship Redis; without
 * it on PATH, `redisServerAvailable()` is false and callers fall back (L1 only, the
 * PostgreSQL stock engine) and say so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { ErrorCodes, PeakError } from '../core/errors.js';

/** How the private Redis persists: what a crash of redis-server may lose. */
export type RedisDurability =
  /** No persistence: a restart starts empty (a pure cache). */
  | 'none'
  /**
   * AOF written (write(2)) before each reply, flushed to disk by the OS (`appendfsync no`): an
   * acknowledged write survives a kill -9 of redis-server (it is in the kernel's page cache),
   * not a power loss or a kernel crash. No fsync on the reply path, so a busy disk does not
   * hold replies up.
   */
  | 'write'
  /** AOF, fsync once a second in the background: a crash loses at most about a second of writes. */
  | 'everysec'
  /**
   * AOF, fsync before each reply (per event-loop batch): an acknowledged write survives a
   * power loss too; every reply waits for the disk (4–30 ms each on a busy shared disk).
   */
  | 'always';

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * Persistence; default `'none'`. The hot-stock engine needs `'write'` (or `'always'`) so an
   * acknowledged deduction survives a kill -9 of redis-server.
   */
  durability?: RedisDurability;
  /** Port; default a free one. */
  port?: number;
  /** Data folder (created when missing, kept at stop); default a new temp folder, removed at stop. */
  dir?: string;
  /** How long to wait for "Ready to accept connections"; default 10 000 ms. */
  startTimeoutMs?: number;
  /**
   * Run it in a process group of its own (default false), so a terminal's Ctrl-C (SIGINT to
   * the whole foreground group) reaches only its parent, which stops it after the processes
   * that still write to it. Like the embedded PostgreSQL, it then outlives a parent killed
   * with SIGKILL.
   */
  ownProcessGroup?: boolean;
}

/** A running private redis-server. */
export interface RedisServerProcess {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number;
  /** Stops it (SIGTERM, SIGKILL after 5 s) and removes a temp data folder. */
  stop(): Promise<void>;
  /** Kills it at once with SIGKILL (crash drills); the folder stays for a restart. */
  kill(): Promise<void>;
}

/** True when `redis-server` is on PATH. */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function isAddressInUse(err: unknown): boolean {
  return err instanceof PeakError && /address already in use/i.test(err.message);
}

/** Spawns redis-server on `port` and waits for it to accept connections. */
async function spawnRedis(
  port: number,
  dir: string,
  options: RedisServerOptions,
  extraArgs: readonly string[],
): Promise<ChildProcess> {
  const durability = options.durability ?? 'none';
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push(...extraArgs);
  args.push('--appendonly', durability === 'none' ? 'no' : 'yes');
  if (durability !== 'none') {
    args.push('--appendfsync', durability === 'write' ? 'no' : durability);
  }
  const child: ChildProcess = spawn('redis-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(
        new PeakError(
          ErrorCodes.CACHE_UNAVAILABLE,
          `redis-server on port ${port} ${why}: ${out.slice(-500)}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`did not start in ${startTimeoutMs} ms`), startTimeoutMs);
    const onExit = (code: number | null) => fail(`exited with ${code}`);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.off('close', onExit);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    // 'close', not 'exit': the reason (stdout's last lines) has been read by then.
    child.once('close', onExit);
  });
  return child;
}

/** Starts a private redis-server; rejects with `PEAK_CACHE_UNAVAILABLE` when it cannot. */
export async function startRedisServer(
  options: RedisServerOptions = {},
): Promise<RedisServerProcess> {
  return startServer(options, []);
}

async function startServer(
  options: RedisServerOptions,
  extraArgs: readonly string[],
): Promise<RedisServerProcess> {
  if (!redisServerAvailable()) {
    throw new PeakError(
      ErrorCodes.CACHE_UNAVAILABLE,
      'redis-server is not on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or give a Redis URL (PEAK_REDIS_URL)',
    );
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'peak-redis-')));
  if (!ownDir) await mkdir(dir, { recursive: true });
  // A free port is found, closed, then handed to redis-server: another process may take it
  // in between (tests running side by side). Then redis-server exits with "Address already
  // in use" and, on a port of our own choosing, another free port is tried.
  let port = options.port ?? (await freeLoopbackPort());
  let child: ChildProcess;
  for (let attempt = 1; ; attempt++) {
    try {
      child = await spawnRedis(port, dir, options, extraArgs);
      break;
    } catch (err) {
      if (options.port !== undefined || attempt >= 5 || !isAddressInUse(err)) throw err;
      port = await freeLoopbackPort();
    }
  }
  child.stdout?.resume();
  child.stderr?.resume();
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: child.pid ?? -1,
    kill,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters, each holding an equal share of the 16 384 slots; default 3 (Redis's minimum). */
  masters?: number;
  /**
   * Replicas of each master; default 0. With one or more, a master that dies is replaced by
   * its replica after the node timeout (`nodeTimeoutMs`), as in production.
   */
  replicas?: number;
  /** `cluster-node-timeout`: how long a node may not answer before it is failed; default 5 000 ms. */
  nodeTimeoutMs?: number;
  /** Persistence of every node; default `'none'`. */
  durability?: RedisDurability;
  /**
   * Run every node in a process group of its own (default false), as
   * `startRedisServer`'s option: a terminal's Ctrl-C then reaches only the parent, which
   * stops the cluster after the processes that use it.
   */
  ownProcessGroup?: boolean;
  /** How long to wait for the cluster to answer (`cluster_state:ok`); default 15 000 ms. */
  startTimeoutMs?: number;
}

/** A running private Redis Cluster. */
export interface RedisClusterProcess {
  /** `redis+cluster://127.0.0.1:<port>,…` (every master: any one would do). */
  readonly url: string;
  /** Its masters as started, slot ranges in order. */
  readonly nodes: readonly RedisServerProcess[];
  /** The replicas as started: `replicas[i]` are master i's. */
  readonly replicas: readonly (readonly RedisServerProcess[])[];
  /** Stops every node and removes their folders. */
  stop(): Promise<void>;
}

/** One command to a node (the cluster's setup), its reply as text. */
async function nodeCommand(port: number, args: readonly string[]): Promise<string> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    commandTimeout: 5000,
  });
  redis.on('error', () => undefined); // the command's own error says it
  try {
    await redis.connect();
    return String(await redis.call(args[0]!, ...args.slice(1)));
  } finally {
    redis.disconnect();
  }
}

/**
 * Starts a private Redis Cluster of `masters` redis-servers on free loopback ports (no
 * replicas: a test and laptop cluster), slots split evenly, and waits until every node
 * says `cluster_state:ok`. Rejects with `PEAK_CACHE_UNAVAILABLE` when it cannot.
 */
export async function startRedisCluster(
  options: RedisClusterOptions = {},
): Promise<RedisClusterProcess> {
  const whole = (value: number, name: string, min: number, max: number): number => {
    if (Number.isInteger(value) && value >= min && value <= max) return value;
    throw new PeakError(
      ErrorCodes.INVALID_ARGUMENT,
      `${name} must be a whole number from ${min} to ${max}, got ${value}`,
      { details: { input: name } },
    );
  };
  const masters = whole(options.masters ?? 3, 'masters', 1, 16);
  const perMaster = whole(options.replicas ?? 0, 'replicas', 0, 4);
  const nodes: RedisServerProcess[] = [];
  const replicas: RedisServerProcess[][] = [];
  const all = () => [...nodes, ...replicas.flat()];
  const stopAll = () => Promise.all(all().map((n) => n.stop())).then(() => undefined);
  const start = () =>
    startServer(
      {
        durability: options.durability ?? 'none',
        ownProcessGroup: options.ownProcessGroup === true,
      },
      [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        String(options.nodeTimeoutMs ?? 5000),
      ],
    );
  try {
    for (let i = 0; i < masters; i++) nodes.push(await start());
    for (let i = 0; i < masters; i++) {
      replicas.push([]);
      for (let r = 0; r < perMaster; r++) replicas[i]!.push(await start());
    }
    const per = Math.ceil(16384 / masters);
    for (const [i, n] of nodes.entries()) {
      const first = i * per;
      const last = Math.min(16383, first + per - 1);
      await nodeCommand(n.port, ['CLUSTER', 'ADDSLOTSRANGE', String(first), String(last)]);
    }
    for (const n of all().slice(1))
      await nodeCommand(n.port, ['CLUSTER', 'MEET', '127.0.0.1', String(nodes[0]!.port)]);
    const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
    const total = all().length;
    // A replica follows its master once it knows it (gossip takes a moment after MEET).
    for (const [i, group] of replicas.entries()) {
      const masterId = (await nodeCommand(nodes[i]!.port, ['CLUSTER', 'MYID'])).trim();
      for (const r of group) {
        for (;;) {
          try {
            await nodeCommand(r.port, ['CLUSTER', 'REPLICATE', masterId]);
            break;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      }
    }
    // Every node sees the whole cluster serving, and every replica has its master's data
    // (a replica that never synced cannot take over).
    const isReplica = new Set(replicas.flat());
    for (const n of all()) {
      for (;;) {
        const info = await nodeCommand(n.port, ['CLUSTER', 'INFO']);
        const known = /cluster_known_nodes:(\d+)/.exec(info);
        const synced =
          !isReplica.has(n) ||
          (await nodeCommand(n.port, ['INFO', 'replication'])).includes('master_link_status:up');
        if (info.includes('cluster_state:ok') && Number(known?.[1]) === total && synced) break;
        if (Date.now() > deadline)
          throw new PeakError(
            ErrorCodes.CACHE_UNAVAILABLE,
            `the Redis Cluster on ports ${all()
              .map((x) => x.port)
              .join(
                ', ',
              )} did not reach cluster_state:ok: ${info.replace(/\s+/g, ' ').slice(0, 300)}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    nodes,
    replicas,
    stop: stopAll,
  };
}
