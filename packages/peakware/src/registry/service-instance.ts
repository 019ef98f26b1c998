/**
 * What the registry knows about one provider instance of one service, and the key a
 * consumer subscribes by. Shared by every {@link Registry} implementation and by rpc.
 */

/** Whether an instance takes traffic: `offline` instances stay registered but get no calls. */
export type InstanceStatus = 'up' | 'offline';

/** One provider process offering one service version in one group. */
export interface ServiceInstance {
  /** The provider process's id (one process may offer several services under it). */
  readonly instanceId: string;
  /** Service name, e.g. `shop.inventory`. */
  readonly service: string;
  /** Service version, e.g. `1.0.0`. */
  readonly version: string;
  /** Deployment group, e.g. `buy-chain`; consumers only see their own group. */
  readonly group: string;
  /** Host the provider's RPC port listens on. */
  readonly host: string;
  /** The provider's RPC (TCP) port. */
  readonly port: number;
  /** Relative weight for load balancing (0 = no traffic). */
  readonly weight: number;
  /** Route tags, e.g. `['canary']`, for gray release. */
  readonly tags: readonly string[];
  /** Free-form facts (HTTP/JSON port, zone, build). */
  readonly metadata: Readonly<Record<string, string>>;
  /** `up` or `offline`. */
  readonly status: InstanceStatus;
  /** When the instance (re)started serving, epoch ms; drives warm-up. */
  readonly startedAt: number;
}

/** What a provider registers; status and start time default to `up` and now. */
export type InstanceRegistration = Omit<ServiceInstance, 'status' | 'startedAt'> & {
  status?: InstanceStatus;
  startedAt?: number;
};

/** Group used when none is given. */
export const DEFAULT_GROUP = 'default';
/** Version used when none is given. */
export const DEFAULT_VERSION = '1.0.0';

/** The subscription key of a service: `group/name:version`. */
export function serviceKey(service: string, version: string, group: string): string {
  return `${group}/${service}:${version}`;
}

/** Splits a key made by {@link serviceKey}; undefined when it is not one. */
export function parseServiceKey(
  key: string,
): { service: string; version: string; group: string } | undefined {
  const m = /^([^/\s]+)\/([^:\s/]+):([^\s/:]+)$/.exec(key);
  if (m === null) return undefined;
  return { group: m[1]!, service: m[2]!, version: m[3]! };
}

/** Instances that may take traffic (status up, weight above zero). */
export function activeInstances(list: readonly ServiceInstance[]): ServiceInstance[] {
  return list.filter((i) => i.status === 'up' && i.weight > 0);
}
