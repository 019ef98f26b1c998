/**
 * A provider in the registry: one registration per hosted service (address, group, weight,
 * tags, metadata with the HTTP/JSON port, transport and pid), the run-time changes (status
 * up/offline, weight, tags), and deregistration for a graceful stop, which an unreachable
 * control plane never holds up.
 */
import type { Logger } from '../core/logger.js';
import type { RegistrationHandle, Registry } from '../registry/registry.js';
import { DEFAULT_GROUP } from '../registry/service-instance.js';
import type { ResolvedServerOptions } from './rpc-server-options.js';
import type { ServiceDefinition } from './service-definition.js';
import { tcpTransport } from './transport.js';

/** Where a started provider listens, as it registers. */
export interface ProviderAddress {
  instanceId: string;
  port: number;
  httpPort: number | undefined;
}

/** The registrations of one provider's services. */
export class ProviderRegistration {
  readonly #opts: ResolvedServerOptions;
  readonly #registry: Registry | undefined;
  #handles: RegistrationHandle[] = [];

  /** Registers in `opts.registry`, when given; without one every call here does nothing. */
  constructor(opts: ResolvedServerOptions) {
    this.#opts = opts;
    this.#registry = opts.registry;
  }

  /** Registers every definition at `address`, one after the other. */
  async registerAll(defs: readonly ServiceDefinition[], address: ProviderAddress): Promise<void> {
    if (this.#registry === undefined) return;
    const opts = this.#opts;
    const host =
      opts.advertiseHost ??
      (opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host);
    for (const def of defs) {
      this.#handles.push(
        await this.#registry.register({
          instanceId: address.instanceId,
          service: def.name,
          version: def.version,
          group: opts.group ?? def.group ?? DEFAULT_GROUP,
          host,
          port: address.port,
          weight: opts.weight,
          tags: opts.tags ?? [],
          metadata: {
            ...(opts.metadata ?? {}),
            ...(address.httpPort === undefined ? {} : { httpPort: String(address.httpPort) }),
            transport: (opts.transport ?? tcpTransport).name,
            pid: String(process.pid),
          },
        }),
      );
    }
  }

  /** Marks every registered service offline (no new traffic) or back up. */
  async setStatus(status: 'up' | 'offline'): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.setStatus(status)));
  }

  /** Changes the registered weight or tags at runtime. */
  async update(patch: { weight?: number; tags?: string[] }): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.update(patch)));
  }

  /** Deregisters every service; failures are logged, never thrown. */
  deregisterAll(logger: Logger): Promise<unknown> {
    return Promise.all(
      this.#handles.map((h) =>
        h.deregister().catch((err) => logger.warn({ err }, 'deregistering failed')),
      ),
    );
  }
}
