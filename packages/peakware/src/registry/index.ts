/**
 * `peakware/registry`: service discovery. Providers register under a renewed lease;
 * consumers get a snapshot and then pushed changes. `HttpRegistry` talks to the peak
 * control plane (SSE push, local snapshot file for control-plane outages);
 * `InMemoryRegistry` is for tests.
 */

export { HTTP_REGISTRY_DEFAULTS, HttpRegistry, type HttpRegistryOptions } from './http-registry.js';
export { InMemoryRegistry } from './in-memory-registry.js';
export { type InstanceProbe, tcpProbe } from './instance-probe.js';
export type {
  InstancesListener,
  RegistrationHandle,
  Registry,
  RegistrySubscription,
} from './registry.js';
export {
  activeInstances,
  DEFAULT_GROUP,
  DEFAULT_VERSION,
  type InstanceRegistration,
  type InstanceStatus,
  parseServiceKey,
  type ServiceInstance,
  serviceKey,
} from './service-instance.js';
