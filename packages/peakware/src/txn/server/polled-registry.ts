/**
 * The coordinator's view of the registry, inside `peak server`: the instances of a service
 * key read from the registry's own store (handed in by the host, as the registry module's
 * function) when first asked and every second after, so the RPC client that calls branches
 * finds providers without an HTTP hop to its own node.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type {
  InstancesListener,
  RegistrationHandle,
  Registry,
  RegistrySubscription,
} from '../../registry/registry.js';
import type { ServiceInstance } from '../../registry/service-instance.js';

/** Reads the live instances of a service key (`group/name:version`). */
export type InstanceLister = (pool: pg.Pool, key: string) => Promise<readonly ServiceInstance[]>;

/** A read-only {@link Registry} polling the control plane's store. */
export class PolledRegistry implements Registry {
  readonly #pool: pg.Pool;
  readonly #list: InstanceLister;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(pool: pg.Pool, list: InstanceLister, logger: Logger, intervalMs = 1000) {
    this.#pool = pool;
    this.#list = list;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  register(): Promise<RegistrationHandle> {
    return Promise.reject(
      new PeakError(ErrorCodes.USAGE, "the coordinator's registry only reads instances"),
    );
  }

  subscribe(key: string, listener: InstancesListener): RegistrySubscription {
    let last: readonly ServiceInstance[] = [];
    let lastJson = '';
    let first = true;
    let closed = false;
    const poll = async () => {
      try {
        const list = await this.#list(this.#pool, key);
        const json = JSON.stringify(
          list.map((i) => [i.instanceId, i.host, i.port, i.status, i.weight]),
        );
        if (closed || (!first && json === lastJson)) return;
        first = false;
        last = list;
        lastJson = json;
        listener(list);
      } catch (err) {
        this.#logger.warn({ err, key }, 'reading instances failed');
      }
    };
    void poll();
    const timer = setInterval(() => void poll(), this.#intervalMs);
    timer.unref();
    this.#timers.add(timer);
    return {
      current: () => last,
      close: () => {
        closed = true;
        clearInterval(timer);
        this.#timers.delete(timer);
      },
    };
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
  }
}
