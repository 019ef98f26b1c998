/**
 * One instance of one service as the consumer sees it: the registry's facts, the shared
 * connection to its address, and the live statistics balancers read (calls in flight,
 * EWMA latency), plus warm-up of new instances.
 */
import type { ServiceInstance } from '../registry/service-instance.js';
import type { RpcConnection } from './rpc-connection.js';

const EWMA_ALPHA = 0.3;

/** A routable instance with its connection and statistics. */
export class Endpoint {
  /** The registry's record (replaced in place when weight or tags change). */
  instance: ServiceInstance;
  readonly connection: RpcConnection;
  /** Calls of this service in flight on this instance. */
  active = 0;
  /** EWMA of call latency, ms (0 until the first answer). */
  ewmaMs = 0;
  readonly #warmupMs: number;

  constructor(instance: ServiceInstance, connection: RpcConnection, warmupMs: number) {
    this.instance = instance;
    this.connection = connection;
    this.#warmupMs = warmupMs;
  }

  /** `host:port`. */
  get address(): string {
    return this.connection.address;
  }

  /** True when a new call may be sent here (connected or connectable, not draining). */
  get available(): boolean {
    return this.connection.available;
  }

  /**
   * The weight a balancer uses: the registered one, ramped up linearly over the warm-up
   * period after the instance started (never below 1 while its weight is positive), so a
   * cold instance (JIT, caches) is not flooded at once.
   */
  weight(now: number = Date.now()): number {
    const w = this.instance.weight;
    if (w <= 0 || this.#warmupMs <= 0) return Math.max(0, w);
    const uptime = now - this.instance.startedAt;
    if (uptime <= 0 || uptime >= this.#warmupMs) return w;
    return Math.max(1, (w * uptime) / this.#warmupMs);
  }

  /** Records one answered call's latency. */
  record(latencyMs: number): void {
    this.ewmaMs =
      this.ewmaMs === 0 ? latencyMs : this.ewmaMs + EWMA_ALPHA * (latencyMs - this.ewmaMs);
  }
}
