/**
 * Opening Redis for the cache tier: one server (`redis://host:port`, `rediss://` for TLS) or
 * a Redis Cluster (`redis+cluster://host:port,host:port`, `rediss+cluster://…`: any of its
 * nodes; the client learns the rest and follows slot moves). Both are ioredis clients; the
 * cache tier lays its keys out per client (see redis-tier.ts).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '../core/errors.js';

/** One Redis or a Redis Cluster client. */
export type RedisClient = Redis | Cluster;

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/;

/** True when `url` names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//.test(url);
}

/** True when the client talks to a Redis Cluster. */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster;
}

/** The seed nodes of a cluster URL, with its credentials and TLS; throws for a malformed one. */
export function parseClusterUrl(url: string): {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
} {
  const m = CLUSTER_URL.exec(url);
  const bad = (why: string) =>
    new InvalidArgumentError(
      `Redis Cluster URL ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//***@'))}: ${why}; write redis+cluster://host:port[,host:port…] (rediss+cluster:// for TLS, user:password@ before the hosts)`,
      { details: { input: 'redis' } },
    );
  if (m === null) throw bad('not a cluster URL');
  const nodes = m[3]!.split(',').map((hp) => {
    const at = hp.lastIndexOf(':');
    const host = at < 0 ? hp : hp.slice(0, at);
    const port = at < 0 ? 6379 : Number(hp.slice(at + 1));
    if (host === '' || !Number.isInteger(port) || port < 1 || port > 65535)
      throw bad(`'${hp}' is not host:port`);
    return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
  });
  const auth = m[2];
  let username: string | undefined;
  let password: string | undefined;
  if (auth !== undefined && auth !== '') {
    const colon = auth.indexOf(':');
    if (colon < 0) password = decodeURIComponent(auth);
    else {
      username = decodeURIComponent(auth.slice(0, colon)) || undefined;
      password = decodeURIComponent(auth.slice(colon + 1));
    }
  }
  return {
    nodes,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    tls: m[1] === 'rediss',
  };
}

/**
 * Opens a client for a Redis URL or a cluster URL, with `options` on every connection
 * (for a cluster, on each node's); auto-pipelining on.
 */
export function openRedis(url: string, options: RedisOptions): RedisClient {
  if (!isClusterUrl(url)) return new Redis(url, { enableAutoPipelining: true, ...options });
  const c = parseClusterUrl(url);
  // What ioredis takes per cluster rather than per node.
  const { enableOfflineQueue, lazyConnect, retryStrategy, ...nodeOptions } = options;
  return new Cluster(c.nodes, {
    enableAutoPipelining: true,
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    ...(typeof retryStrategy === 'function'
      ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null }
      : {}),
    redisOptions: {
      ...nodeOptions,
      ...(c.username === undefined ? {} : { username: c.username }),
      ...(c.password === undefined ? {} : { password: c.password }),
      ...(c.tls ? { tls: {} } : {}),
    },
  });
}

/** `host:port` of a Redis URL, the seed list of a cluster URL, or the URL when it does not parse. */
export function redisPeer(url: string): string {
  if (isClusterUrl(url)) {
    try {
      return parseClusterUrl(url)
        .nodes.map((n) => `${n.host}:${n.port}`)
        .join(',');
    } catch {
      return url;
    }
  }
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return url;
  }
}

/** `host:port` of a Redis given as a URL or a client (a cluster: its seed nodes). */
export function redisPeerOf(redis: string | RedisClient): string {
  if (typeof redis === 'string') return redisPeer(redis);
  if (isCluster(redis)) {
    const seeds = (redis as unknown as { startupNodes?: { host?: string; port?: number }[] })
      .startupNodes;
    return (seeds ?? []).map((n) => `${n.host ?? 'localhost'}:${n.port ?? 6379}`).join(',');
  }
  return `${redis.options.host ?? 'localhost'}:${redis.options.port ?? 6379}`;
}
