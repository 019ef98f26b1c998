/**
 * How a discovery client checks that a provider it still lists but the control plane no
 * longer does is alive: by default a TCP connect to its RPC port (a process that died
 * refuses it at once; one that hangs lets it time out).
 */
import net from 'node:net';
import type { ServiceInstance } from './service-instance.js';

/** Resolves true when `instance` looks alive, false when it does not. Never rejects. */
export type InstanceProbe = (instance: ServiceInstance) => Promise<boolean>;

/** A probe that opens (and closes at once) a TCP connection to the instance's port. */
export function tcpProbe(timeoutMs = 1000): InstanceProbe {
  return (instance) =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: instance.host, port: instance.port });
      const done = (alive: boolean) => {
        socket.destroy();
        resolve(alive);
      };
      socket.setTimeout(timeoutMs, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
}
