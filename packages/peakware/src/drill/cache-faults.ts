/**
 * Faults at the cache: a shared tier (L2) wrapped so `agent`'s `cache` faults run on its
 * reads and writes (`new Cache({ remote: faultyRemoteTier(agent, 'products', tier) })`).
 * A failing or slow Redis is what a drill wants to see the cache survive (its breaker, the
 * loader, grace values); a dropped read is a miss, a dropped write is lost.
 */
import type { RemoteRead, RemoteTier } from '../cache/remote-tier.js';
import type { DrillAgent } from './drill-agent.js';
import { runFault } from './fault-action.js';

/** `tier` with `agent`'s `cache` faults for the cache named `cache` in front of its reads and writes. */
export function faultyRemoteTier(agent: DrillAgent, cache: string, tier: RemoteTier): RemoteTier {
  /** Runs a matching fault; true when the operation is to be dropped. */
  const fault = async (key: string, op: string): Promise<boolean> => {
    if (!agent.has('cache')) return false;
    const f = agent.find('cache', { cache, key });
    if (f === undefined) return false;
    return (await runFault(f, `cache ${cache} ${op} ${key}`)) === 'drop';
  };
  return {
    async read(key): Promise<RemoteRead> {
      if (await fault(key, 'read')) return { payload: null, version: 0 };
      return tier.read(key);
    },
    async writeIfVersion(key, version, payload, ttlMs, tags) {
      if (await fault(key, 'write')) return false;
      return tier.writeIfVersion(key, version, payload, ttlMs, tags);
    },
    async write(key, payload, ttlMs, tags) {
      if (await fault(key, 'write')) return 0;
      return tier.write(key, payload, ttlMs, tags);
    },
    invalidate: (keys) => tier.invalidate(keys),
    invalidateTag: (tag) => tier.invalidateTag(tag),
    tryLock: (key, ttlMs) => tier.tryLock(key, ttlMs),
    unlock: (key) => tier.unlock(key),
    subscribe: (onInvalidate, onResync) => tier.subscribe(onInvalidate, onResync),
    close: () => tier.close(),
  };
}
