/**
 * A registry that lives in one process: for unit tests and for wiring a provider and a
 * consumer in the same process without a control plane. Changes are delivered on a
 * microtask, like a push from the control plane would be.
 */
import type {
  InstancesListener,
  RegistrationHandle,
  Registry,
  RegistrySubscription,
} from './registry.js';
import {
  type InstanceRegistration,
  type InstanceStatus,
  type ServiceInstance,
  serviceKey,
} from './service-instance.js';

/** An in-process {@link Registry}. */
export class InMemoryRegistry implements Registry {
  readonly #instances = new Map<string, Map<string, ServiceInstance>>();
  readonly #listeners = new Map<string, Set<InstancesListener>>();

  /** Every instance of a key, as consumers would see it. */
  list(key: string): ServiceInstance[] {
    return [...(this.#instances.get(key)?.values() ?? [])];
  }

  async register(registration: InstanceRegistration): Promise<RegistrationHandle> {
    let instance: ServiceInstance = {
      ...registration,
      tags: [...registration.tags],
      metadata: { ...registration.metadata },
      status: registration.status ?? 'up',
      startedAt: registration.startedAt ?? Date.now(),
    };
    const key = serviceKey(instance.service, instance.version, instance.group);
    const put = (next: ServiceInstance) => {
      instance = next;
      let map = this.#instances.get(key);
      if (map === undefined) {
        map = new Map();
        this.#instances.set(key, map);
      }
      map.set(next.instanceId, next);
      this.#notify(key);
    };
    put(instance);
    let gone = false;
    return {
      get instance() {
        return instance;
      },
      setStatus: async (status: InstanceStatus) => {
        if (!gone) put({ ...instance, status });
      },
      update: async (patch) => {
        if (!gone) put({ ...instance, ...patch });
      },
      deregister: async () => {
        if (gone) return;
        gone = true;
        this.#instances.get(key)?.delete(instance.instanceId);
        this.#notify(key);
      },
    };
  }

  subscribe(key: string, listener: InstancesListener): RegistrySubscription {
    let set = this.#listeners.get(key);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(key, set);
    }
    set.add(listener);
    let last: readonly ServiceInstance[] = this.list(key);
    const wrapped: InstancesListener = (list) => {
      last = list;
      listener(list);
    };
    set.delete(listener);
    set.add(wrapped);
    queueMicrotask(() => {
      if (set.has(wrapped)) wrapped(this.list(key));
    });
    return {
      current: () => last,
      close: () => {
        set.delete(wrapped);
      },
    };
  }

  #notify(key: string): void {
    const set = this.#listeners.get(key);
    if (set === undefined || set.size === 0) return;
    queueMicrotask(() => {
      const list = this.list(key);
      for (const fn of set) fn(list);
    });
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
