/**
 * `peak server`, the control plane. Start-up, in order: take the data folder; start the
 * embedded PostgreSQL (or connect to `postgresUrl`); apply migrations; make sure an admin
 * token exists and the local apps have credentials in the data folder; register this node;
 * listen for HTTP. Shutdown reverses it within a bound:
 * stop accepting, let in-flight requests finish, deregister, close the pool, stop
 * PostgreSQL, release the folder.
 *
 * Nodes are stateless: everything they share lives in PostgreSQL, so N servers pointed at
 * one database behind a load balancer act as one control plane.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type https from 'node:https';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { ErrorCodes, errorMessage, PeakError, UsageError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { isLoopbackHost } from '../core/loopback.js';
import { readTlsFiles, type TlsFiles, TlsFilesWatcher } from '../core/tls-files.js';
import { PEAKWARE_VERSION } from '../core/version.js';
import { ensureAdminToken } from './admin-token.js';
import { adminRoutes } from './api/admin-routes.js';
import { appRoutes } from './api/app-routes.js';
import { identityRoutes } from './api/identity-routes.js';
import { systemRoutes } from './api/system-routes.js';
import { ensureLocalApp } from './app-credentials.js';
import { LOCAL_APP_SCOPES } from './app-scopes.js';
import { AuthFailureLimiter } from './auth-failure-limiter.js';
import { Authenticator } from './authenticator.js';
import {
  DataFiles,
  type DataFolderLock,
  lockDataFolder,
  prepareDataFolder,
} from './data-folder.js';
import { type DatabaseTarget, openPool, parsePostgresUrl, redactUrl } from './database.js';
import { DEFAULT_DATA_DIR, DEFAULT_PORT } from './defaults.js';
import { EmbeddedPostgres } from './embedded-postgres.js';
import {
  type ApiApp,
  type ApiModule,
  createHttpApiWithRoutes,
  type RouteEntry,
} from './http-api.js';
import { HttpRequestMetrics } from './http-request-metrics.js';
import { IdentityIssuer } from './identity-issuer.js';
import { collectMigrations } from './migrations/index.js';
import { migrate } from './migrator.js';
import { builtinModules, ControlPlaneRpcServer } from './modules.js';
import { resolveServerSettings, type ServerSettingsOptions } from './server-settings.js';

/**
 * Options for {@link PeakServer.start}: every field optional. The node's own defaults are
 * listed here; the subsystem settings it extends (`postgresPoolMax`, `mq`, `telemetry`,
 * `guard`) have theirs, and their ranges, in the one table of server-settings.ts. Nothing
 * here is read from the environment: the CLI's `server` command does that.
 */
export interface PeakServerOptions extends ServerSettingsOptions {
  /** The data folder. Default `./.peak`. */
  dataDir?: string;
  /** An external PostgreSQL; when absent, the embedded one runs in `<dataDir>/pg`. */
  postgresUrl?: string;
  /** HTTP bind address. Default `127.0.0.1`. */
  host?: string;
  /** HTTP port; 0 picks a free one. Default 7420. */
  port?: number;
  /** Where logs go. Default: none. */
  logger?: Logger;
  /** The bound on graceful shutdown, ms. Default 20 000. */
  shutdownTimeoutMs?: number;
  /** How often this node heartbeats into `peak.nodes`, ms. Default 5000. */
  heartbeatMs?: number;
  /** Extra route modules (later subsystems). */
  apiModules?: readonly ApiModule[];
  /**
   * The subsystems this node serves (module names: `registry`, `guard`, `mq`, `config`,
   * `telemetry`, `gateway`, `console`, `drill`, `stress`, `txn`, `scale`; `SERVER_ROLES`); default all. Nodes on one PostgreSQL may split them,
   * e.g. a broker node (`['mq']`) beside a node with the rest, so each role is sized and
   * scaled on its own. Every node runs every migration and serves the system and admin routes.
   */
  roles?: readonly string[];
  /**
   * Serve HTTPS from these PEM files (`peak tls init` makes a dev pair: `server.pem`,
   * `server.key`). The files are watched: a renewed certificate is served to new
   * connections without a restart. Absent: plain HTTP, with a warning at start when `host`
   * is not a loopback address.
   */
  tls?: ServerTlsOptions;
  /**
   * Apps to keep credentials for in the data folder (`<data>/credentials/<app>`, mode
   * 0600), with their grants: a laptop chain (the shop) passes each process its own. App
   * `local` (every SDK grant on every resource, for the CLI's `peak mq send`, snippets and
   * quick tries) is always there. A credential in its file that still works is kept.
   */
  localApps?: Readonly<Record<string, readonly string[]>>;
}

/** The module names a node can serve (`PeakServerOptions.roles`). */
export const SERVER_ROLES: readonly string[] = builtinModules.map((m) => m.name);

/** Checks `roles` against the modules; refuses an unknown or empty list, naming the valid ones. */
function checkRoles(roles: readonly string[] | undefined): readonly string[] {
  if (roles === undefined) return SERVER_ROLES;
  const unknown = roles.filter((r) => !SERVER_ROLES.includes(r));
  if (unknown.length > 0 || roles.length === 0) {
    throw new UsageError(
      `${unknown.length > 0 ? `unknown role ${unknown.map((r) => `'${r}'`).join(', ')}` : 'no role given'}: a node serves some of ${SERVER_ROLES.join(', ')} (default all)`,
      { details: { input: 'roles' } },
    );
  }
  return SERVER_ROLES.filter((r) => roles.includes(r));
}

function portInUse(host: string, port: number, cause: unknown): PeakError {
  return new PeakError(
    ErrorCodes.PORT_IN_USE,
    `port ${port} on ${host} is already in use; stop what listens there or pass --port <another port> (0 picks a free one)`,
    { cause, details: { input: '--port', port } },
  );
}

/** Throws PEAK_PORT_IN_USE when nothing can listen on host:port right now. */
async function assertPortFree(host: string, port: number): Promise<void> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port, exclusive: true }, resolve);
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portInUse(host, port, err);
    throw new PeakError(
      ErrorCodes.USAGE,
      `cannot listen on ${host}:${port}: ${errorMessage(err)}`,
      {
        cause: err,
        details: { input: '--host' },
      },
    );
  } finally {
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  }
}

/** HTTPS for the control plane ({@link PeakServerOptions.tls}): certificate files, watched. */
export type ServerTlsOptions = TlsFiles;

/** Facts about a running server, for banners and `--json`. */
export interface PeakServerInfo {
  nodeId: string;
  url: string;
  host: string;
  port: number;
  dataDir: string;
  postgres:
    | { mode: 'embedded'; host: string; port: number; pid: number | undefined }
    | { mode: 'external'; url: string };
  schemaVersion: number;
  migrationsApplied: number[];
  /** Whether the API is served over HTTPS. */
  tls: boolean;
  /** Where the RPC port for the SDK's hot calls listens (absent when it is off); `tls` under HTTPS. */
  rpc?: { host: string; port: number; tls: boolean };
  /** The admin token, only on the start that created it (show it once). */
  adminToken?: string;
  adminTokenFile: string;
  /** The subsystems this node serves. */
  roles: readonly string[];
  /** Where each local app's credential is (`local` and the `localApps` option's). */
  appCredentialFiles: Record<string, string>;
}

/** A running control-plane node. */
export class PeakServer {
  readonly info: PeakServerInfo;
  readonly #logger: Logger;
  readonly #app: ApiApp;
  readonly #routes: readonly RouteEntry[];
  readonly #pool: pg.Pool;
  readonly #target: DatabaseTarget;
  readonly #embedded: EmbeddedPostgres | undefined;
  readonly #lock: DataFolderLock;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #shutdownTimeoutMs: number;
  readonly #credentials: ReadonlyMap<string, string>;
  readonly #tls: TlsFilesWatcher | undefined;
  #stopping: Promise<boolean> | undefined;

  private constructor(parts: {
    info: PeakServerInfo;
    logger: Logger;
    app: ApiApp;
    routes: readonly RouteEntry[];
    pool: pg.Pool;
    target: DatabaseTarget;
    embedded: EmbeddedPostgres | undefined;
    lock: DataFolderLock;
    heartbeat: NodeJS.Timeout;
    shutdownTimeoutMs: number;
    credentials: ReadonlyMap<string, string>;
    tls: ServerTlsOptions | undefined;
  }) {
    this.info = parts.info;
    this.#logger = parts.logger;
    this.#app = parts.app;
    this.#routes = parts.routes;
    this.#pool = parts.pool;
    this.#target = parts.target;
    this.#embedded = parts.embedded;
    this.#lock = parts.lock;
    this.#heartbeat = parts.heartbeat;
    this.#shutdownTimeoutMs = parts.shutdownTimeoutMs;
    this.#credentials = parts.credentials;
    this.#tls =
      parts.tls === undefined
        ? undefined
        : new TlsFilesWatcher(parts.tls, parts.app.server as unknown as https.Server, parts.logger);
  }

  /**
   * Reads the certificate files again and serves them to new connections (the files are
   * watched; this is for a caller that knows they changed). A pair that does not load is
   * logged and the one in use stays. Resolves whether the new pair is in use.
   */
  async reloadTls(): Promise<boolean> {
    return (await this.#tls?.reload()) ?? false;
  }

  /** Starts a control-plane node; on failure, undoes whatever it had started. */
  static async start(options: PeakServerOptions = {}): Promise<PeakServer> {
    const logger = options.logger ?? silentLogger();
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new PeakError(ErrorCodes.USAGE, `--port must be an integer 0-65535, got ${port}`, {
        details: { input: '--port' },
      });
    }
    if (options.postgresUrl !== undefined) parsePostgresUrl(options.postgresUrl);
    // A setting out of range stops the start here, before PostgreSQL is started.
    const settings = resolveServerSettings(options);
    const nodeId = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const startedAt = Date.now();
    const cleanups: (() => Promise<void>)[] = [];
    const undo = async () => {
      for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    };
    try {
      // Fail fast on a taken port, before spending seconds on PostgreSQL.
      if (port !== 0) await assertPortFree(host, port);
      const roles = checkRoles(options.roles);
      const dataDir = await prepareDataFolder(options.dataDir ?? DEFAULT_DATA_DIR);
      const lock = await lockDataFolder(dataDir);
      cleanups.push(() => lock.release());

      let target: DatabaseTarget;
      let embedded: EmbeddedPostgres | undefined;
      if (options.postgresUrl === undefined) {
        embedded = new EmbeddedPostgres({
          dataDir,
          logger: logger.child({ component: 'postgres' }),
        });
        cleanups.push(() => embedded!.stop());
        target = { endpoint: await embedded.start() };
      } else {
        target = { url: options.postgresUrl };
      }
      // Five sessions stay checked out for good (the registry's, config's and mq's LISTEN
      // connections, the alert evaluator's and the guard token server's leader locks), so
      // the pool is sized for them plus the API's traffic. PostgreSQL's own limit bounds
      // nodes × this (the embedded one allows 200 connections).
      const pool = await openPool(target, { logger, max: settings.postgresPoolMax });
      cleanups.push(() => pool.end());

      const migrated = await migrate(
        pool,
        collectMigrations(builtinModules),
        logger.child({ component: 'migrate' }),
      );
      const tokenFile = path.join(dataDir, DataFiles.adminToken);
      const token = await ensureAdminToken(pool, tokenFile, `start:${nodeId}`);
      const credentials = new Map<string, string>();
      const appCredentialFiles: Record<string, string> = {};
      const localApps = { local: LOCAL_APP_SCOPES, ...(options.localApps ?? {}) };
      await mkdir(path.join(dataDir, DataFiles.credentialsDir), { recursive: true, mode: 0o700 });
      for (const [name, can] of Object.entries(localApps)) {
        const file = path.join(dataDir, DataFiles.credentialsDir, name);
        const local = await ensureLocalApp(pool, name, can, file, `start:${nodeId}`);
        credentials.set(name, local.credential);
        appCredentialFiles[name] = file;
      }
      const authenticator = new Authenticator(pool);
      const issuer = new IdentityIssuer(pool);
      await issuer.ensureKey();

      const authFailures = new AuthFailureLimiter();
      // Read (and checked as a pair) before anything serves them: the HTTPS port and the RPC port.
      const tlsPair = options.tls === undefined ? undefined : await readTlsFiles(options.tls);
      const rpc =
        settings.rpc === undefined
          ? undefined
          : new ControlPlaneRpcServer({
              ...settings.rpc,
              // An HTTPS node's RPC port serves TLS from the same files (reloaded alike).
              ...(options.tls === undefined ? {} : { tls: options.tls }),
              logger: logger.child({ component: 'rpc-port' }),
              authenticate: (t: string) => authenticator.authenticate(t),
              failures: authFailures,
            });
      const ctx = {
        ...(rpc === undefined ? {} : { rpc, rpcEndpoint: () => rpc.endpoint() }),
        authCounters: () => ({
          failures: authFailures.failures,
          rateLimited: authFailures.refused,
          denied: authFailures.denied,
        }),
        authenticate: (token: string) => authenticator.authenticate(token),
        issueIdentity: (app: string) => issuer.issue(app),
        authFailures,
        pool,
        logger,
        nodeId,
        dataDir,
        postgresMode: embedded === undefined ? ('external' as const) : ('embedded' as const),
        schemaVersion: migrated.version,
        startedAt,
        settings,
        roles,
        httpMetrics: new HttpRequestMetrics(),
      };
      const { app, routes } = createHttpApiWithRoutes(ctx, {
        ...(tlsPair === undefined ? {} : { https: tlsPair }),
        authenticator,
        authFailures,
        modules: [
          systemRoutes,
          adminRoutes(authenticator),
          appRoutes(authenticator),
          identityRoutes(issuer),
          ...builtinModules.filter((m) => roles.includes(m.name)).map((m) => m.routes),
          ...(options.apiModules ?? []),
        ],
      });
      if (rpc !== undefined) {
        // Registered after every module's hooks: the port opens once they are ready, and
        // closes after their preClose (long polls woken) and before the HTTP server drains.
        app.addHook('onReady', () => rpc.start());
        app.addHook('preClose', () => rpc.stop());
      }
      cleanups.push(() => app.close());
      try {
        await app.listen({ host, port });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portInUse(host, port, err);
        throw err;
      }
      const address = app.server.address();
      const boundPort = typeof address === 'object' && address !== null ? address.port : port;
      const url = `${tlsPair === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
      if (tlsPair === undefined && !isLoopbackHost(host)) {
        logger.warn(
          { host },
          'listening on a non-loopback address without TLS: credentials and tokens cross the network in clear; pass --tls-cert and --tls-key (peak tls init makes a dev pair)',
        );
      }

      const beat = async () => {
        await pool.query(
          `INSERT INTO peak.nodes (node_id, http_url, version, hostname, pid)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (node_id) DO UPDATE SET last_seen_at = now()`,
          [nodeId, url, PEAKWARE_VERSION, os.hostname(), process.pid],
        );
      };
      await beat();
      const heartbeat = setInterval(() => {
        beat().catch((err) => logger.warn({ err }, 'node heartbeat failed'));
      }, options.heartbeatMs ?? 5000);
      heartbeat.unref();

      const endpoint = embedded?.endpoint;
      const info: PeakServerInfo = {
        nodeId,
        url,
        host,
        port: boundPort,
        dataDir,
        postgres:
          embedded === undefined || endpoint === undefined
            ? { mode: 'external', url: redactUrl(options.postgresUrl ?? '') }
            : { mode: 'embedded', host: endpoint.host, port: endpoint.port, pid: embedded.pid },
        schemaVersion: migrated.version,
        migrationsApplied: migrated.applied,
        tls: tlsPair !== undefined,
        ...(rpc?.endpoint() === undefined ? {} : { rpc: rpc.endpoint()! }),
        adminTokenFile: tokenFile,
        roles,
        appCredentialFiles,
        ...(token.token === undefined ? {} : { adminToken: token.token }),
      };
      logger.info({ url, nodeId, postgres: info.postgres.mode, roles }, 'peak server ready');
      return new PeakServer({
        info,
        logger,
        app,
        routes,
        pool,
        target,
        embedded,
        lock,
        heartbeat,
        shutdownTimeoutMs: options.shutdownTimeoutMs ?? 20_000,
        credentials,
        tls: options.tls,
      });
    } catch (err) {
      await undo();
      if (err instanceof PeakError) throw err;
      throw new PeakError(
        ErrorCodes.INTERNAL,
        `peak server failed to start: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * The credential of local app `app` (`local`, or one of the `localApps` option's), as in
   * its file in the data folder: what a laptop chain passes its processes.
   */
  credential(app = 'local'): string {
    const c = this.#credentials.get(app);
    if (c === undefined) {
      throw new PeakError(
        ErrorCodes.USAGE,
        `no local app '${app}'; local apps: ${[...this.#credentials.keys()].join(', ')} (add one with the localApps option)`,
      );
    }
    return c;
  }

  /** The HTTP route table with each route's auth decision (what the auth tests walk). */
  routes(): readonly RouteEntry[] {
    return this.#routes;
  }

  /**
   * A connection URL (with credentials) for `database` on the PostgreSQL this node uses.
   * For laptop setups such as the shop demo, which keep business data in their own
   * database beside the control plane; production services use their own PostgreSQL.
   */
  postgresUrl(database = 'postgres'): string {
    const url =
      'url' in this.#target
        ? new URL(this.#target.url)
        : new URL(
            `postgres://${encodeURIComponent(this.#target.endpoint.user)}:${encodeURIComponent(this.#target.endpoint.password)}@${this.#target.endpoint.host}:${this.#target.endpoint.port}/`,
          );
    url.pathname = `/${encodeURIComponent(database)}`;
    return url.toString();
  }

  /** The embedded postmaster's pid while it runs (undefined with an external PostgreSQL). */
  get postgresPid(): number | undefined {
    return this.#embedded?.pid;
  }

  /**
   * Stops the node gracefully: no new requests, in-flight ones finish, then the database
   * side shuts down. Resolves `true` when everything stopped within the bound, `false` when
   * it had to force. Safe to call more than once.
   */
  stop(): Promise<boolean> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<boolean> {
    const logger = this.#logger;
    logger.info('shutting down');
    clearInterval(this.#heartbeat);
    this.#tls?.close();
    let timer: NodeJS.Timeout | undefined;
    const bounded = async (what: string, ms: number, fn: () => Promise<unknown>) => {
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), ms);
      });
      try {
        const result = await Promise.race([fn().then(() => 'done' as const), timeout]);
        if (result === 'timeout') logger.warn({ ms }, `${what} did not finish in time`);
        return result === 'done';
      } catch (err) {
        logger.warn({ err }, `${what} failed`);
        return false;
      } finally {
        clearTimeout(timer);
      }
    };
    const budget = this.#shutdownTimeoutMs;
    // app.close() waits for in-flight requests, then runs every module's onClose (workers,
    // leader locks). A request that outlives its half of the budget has its socket ended, so
    // the modules still stop before the pool closes under them.
    const closing = this.#app.close();
    let clean = await bounded('closing HTTP', budget / 2, () => closing);
    this.#app.server.closeAllConnections?.();
    clean = (await bounded('stopping the modules', budget / 4, () => closing)) && clean;
    clean =
      (await bounded('deregistering node', 2000, () =>
        this.#pool.query('DELETE FROM peak.nodes WHERE node_id = $1', [this.info.nodeId]),
      )) && clean;
    clean = (await bounded('closing the database pool', 3000, () => this.#pool.end())) && clean;
    if (this.#embedded !== undefined) {
      // EmbeddedPostgres.stop escalates on its own, so it always ends with no process left.
      clean = (await bounded('stopping PostgreSQL', budget, () => this.#embedded!.stop())) && clean;
    }
    await this.#lock.release().catch(() => undefined);
    logger.info({ clean }, 'stopped');
    return clean;
  }
}
