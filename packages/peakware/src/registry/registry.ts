/**
 * The `Registry` seam: how providers announce themselves and how consumers learn the live
 * list. One implementation talks to the peak control plane (`HttpRegistry`), one lives in
 * process for tests (`InMemoryRegistry`).
 */
import type { InstanceRegistration, InstanceStatus, ServiceInstance } from './service-instance.js';

/** A provider's live registration; keeps its lease renewed until deregistered. */
export interface RegistrationHandle {
  /** The instance as registered. */
  readonly instance: ServiceInstance;
  /** Marks the instance up or offline (offline: stays listed, gets no traffic). */
  setStatus(status: InstanceStatus): Promise<void>;
  /** Changes weight or tags at runtime; consumers get the change pushed. */
  update(patch: { weight?: number; tags?: string[] }): Promise<void>;
  /** Removes the instance and stops renewing its lease. */
  deregister(): Promise<void>;
}

/** A consumer's subscription to one service key. */
export interface RegistrySubscription {
  /** The last list received (possibly from the local snapshot file). */
  current(): readonly ServiceInstance[];
  /** Stops receiving changes. */
  close(): void;
}

/** Receives the full list of a service's instances on each change (snapshot semantics). */
export type InstancesListener = (instances: readonly ServiceInstance[]) => void;

/** The control-plane client seam for service discovery. */
export interface Registry {
  /** Registers a provider instance under a lease the implementation renews. */
  register(instance: InstanceRegistration): Promise<RegistrationHandle>;
  /**
   * Subscribes to a service key (`group/name:version`): the listener gets the current list
   * as soon as it is known and every change after it.
   */
  subscribe(key: string, listener: InstancesListener): RegistrySubscription;
  /** Stops every lease and subscription (does not deregister: use the handles for that). */
  close(): Promise<void>;
}
