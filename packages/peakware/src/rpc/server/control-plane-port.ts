/**
 * The node's RPC port as `peak server` runs it (the host's control-plane-rpc.ts has what
 * modules see of it, and why the port exists): one provider of this folder's SDK half that
 * the modules add their services to, opened once they are ready and closed after their
 * `preClose`.
 */
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { TlsFiles } from '../../core/tls-files.js';
import type { ScopeKind } from '../../server/app-scopes.js';
import {
  type ControlPlaneRpc,
  type RpcCredentialCheck,
  rpcCaller,
} from '../../server/control-plane-rpc.js';
import type { Caller } from '../../server/http-api.js';
import { RpcServer } from '../rpc-server.js';
import type { ServiceDefinition, ServiceImplementation } from '../service-definition.js';
import { TlsTransport } from '../transport.js';

/** Options of {@link ControlPlaneRpcServer}. */
export interface ControlPlaneRpcOptions extends RpcCredentialCheck {
  host: string;
  port: number;
  logger: Logger;
  /**
   * Serve TLS from these files (the node's HTTPS pair: an HTTPS node's clients come here
   * only over TLS, and check the certificate as for HTTPS). Renewed files reach new
   * connections without a restart. Absent: plain TCP.
   */
  tls?: TlsFiles;
  /**
   * Largest frame, bytes, either way (a receive's answer may hold many bodies of up to
   * 4 MiB each: one that would be larger fails, and what it claimed is delivered again after
   * its invisibility timeout). Default 64 MiB.
   */
  maxFrameBytes?: number;
}

/** The node's RPC port (see the header). */
export class ControlPlaneRpcServer implements ControlPlaneRpc {
  readonly #o: ControlPlaneRpcOptions;
  readonly #rpc: RpcServer;
  #port: number | undefined;

  constructor(options: ControlPlaneRpcOptions) {
    this.#o = options;
    this.#rpc = new RpcServer({
      host: options.host,
      port: options.port,
      maxFrameBytes: options.maxFrameBytes ?? 64 * 1024 * 1024,
      // Long polls wait up to 30 s; the client's heartbeats keep a waiting connection alive.
      idleTimeoutMs: 60_000,
      drainTimeoutMs: 5000,
      logger: options.logger,
      ...(options.tls === undefined
        ? {}
        : {
            transport: new TlsTransport({
              certFile: options.tls.certFile,
              keyFile: options.tls.keyFile,
              reloadIntervalMs: options.tls.reloadIntervalMs ?? 2000,
              logger: options.logger,
            }),
          }),
    });
  }

  addService(def: ServiceDefinition, impl: object): void {
    this.#rpc.addService(def, impl as ServiceImplementation<ServiceDefinition>);
  }

  caller(token: string | undefined, remote: string | undefined, scope: ScopeKind): Promise<Caller> {
    return rpcCaller(this.#o, token, remote, scope);
  }

  /** Where it listens, once started. */
  endpoint(): { host: string; port: number; tls: boolean } | undefined {
    return this.#port === undefined
      ? undefined
      : { host: this.#o.host, port: this.#port, tls: this.#o.tls !== undefined };
  }

  /** Opens the port (every module's services are added by now). */
  async start(): Promise<void> {
    let port: number;
    try {
      ({ port } = await this.#rpc.start());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      // Said of this port, not of the HTTP port the node's start would otherwise blame.
      throw new PeakError(
        ErrorCodes.PORT_IN_USE,
        `the RPC port ${this.#o.port} on ${this.#o.host} is already in use; set PEAK_RPC_PORT (rpc.port) to another port, 0 for a free one, or off`,
        { cause: err, details: { input: 'PEAK_RPC_PORT', port: this.#o.port } },
      );
    }
    this.#port = port;
    const { host, logger } = this.#o;
    const tls = this.#o.tls !== undefined;
    logger.info({ host, port, tls }, 'RPC port listening (the SDK hot paths: mq, txn)');
    if (!tls && !/^(127\.|::1$|localhost$)/.test(host)) {
      logger.warn(
        { host, port },
        'the RPC port listens beyond this machine without TLS: credentials and messages cross the network in clear; serve HTTPS (--tls-cert, --tls-key) and the port serves TLS from the same files',
      );
    }
  }

  /** GOAWAY to every client (their next calls go over HTTP), lets the calls in flight answer, closes. */
  async stop(): Promise<void> {
    this.#port = undefined;
    await this.#rpc.stop();
  }
}
