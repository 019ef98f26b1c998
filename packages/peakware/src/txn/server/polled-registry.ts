/**
 * The coordinator's view of the registry, inside `peak server`: the instances of a service
 * key read from the registry's own store (handed in by the host, as the registry module's
 * function) when first asked and every second after, so the RPC client that calls branches
 * finds providers without an HTTP hop to its own node.
 *
 * An empty list after a non-empty one is held back as the SDK's registry client holds one
 * (`ListProtection`, Dubbo's empty protection): a control plane too loaded to take the
 * providers' renewals in time lets their leases run out while they still answer, and the
 * branch calls of every transaction would fail with "no provider" (their cancels and
 * confirms handed to recovery with growing delays) until the providers registered again.
 * The known instances keep serving, probed every second; those that really left fail the
 * probe and go.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { HTTP_REGISTRY_DEFAULTS } from '../../registry/http-registry.js';
import { type InstanceProbe, tcpProbe } from '../../registry/instance-probe.js';
import { ListProtection } from '../../registry/list-protection.js';
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

  readonly #probe: InstanceProbe;

  constructor(
    pool: pg.Pool,
    list: InstanceLister,
    logger: Logger,
    intervalMs = 1000,
    probe: InstanceProbe = tcpProbe(),
  ) {
    this.#pool = pool;
    this.#list = list;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    this.#probe = probe;
  }

  register(): Promise<RegistrationHandle> {
    return Promise.reject(
      new PeakError(ErrorCodes.USAGE, "the coordinator's registry only reads instances"),
    );
  }

  subscribe(key: string, listener: InstancesListener): RegistrySubscription {
    let last: readonly ServiceInstance[] = [];
    let served: readonly ServiceInstance[] | undefined;
    let lastJson = '';
    let first = true;
    let closed = false;
    const protection = new ListProtection(
      {
        key,
        share: HTTP_REGISTRY_DEFAULTS.protectThreshold,
        graceMs: HTTP_REGISTRY_DEFAULTS.emptyPushGraceMs,
        probeEveryMs: HTTP_REGISTRY_DEFAULTS.probeEveryMs,
        probe: this.#probe,
        logger: this.#logger,
        // Providers that deregister as the system stops empty the list too: not a warning.
        holdLogLevel: 'info',
      },
      (list) => {
        if (closed) return;
        served = list;
        last = list;
        listener(list);
      },
    );
    const poll = async () => {
      try {
        const list = await this.#list(this.#pool, key);
        const json = JSON.stringify(
          list.map((i) => [i.instanceId, i.host, i.port, i.status, i.weight]),
        );
        if (closed || (!first && json === lastJson)) return;
        first = false;
        lastJson = json;
        // Not a reconnect: only an empty list starts a hold (see the module comment).
        protection.offer([...list], false, served);
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
        protection.close();
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
