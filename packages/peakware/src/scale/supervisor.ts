/**
 * The supervisor (`peak supervise <app.yaml>`), the actuator on one machine: runs the app
 * file's services as N instances each, restarts a crashed one with backoff, stops one
 * gracefully (SIGTERM to its process group: the RPC provider deregisters, drains and
 * exits; SIGKILL after the service's `stopTimeoutMs`), and reports every instance to the
 * control plane once a second, whose answer says how many of which version to run.
 *
 * It survives its own death: each instance is its own process group writing to its own
 * log file, with a pid file `<stateDir>/<instance>.json` (pid and the process's start
 * time, so a reused pid is never taken for it); a new supervisor on the same state folder
 * adopts every instance still alive and watches it by pid. While the control plane does
 * not answer it keeps what runs (nothing is stopped for want of orders).
 *
 * Every instance gets `PEAK_INSTANCE_ID`, `PEAK_APP`, `PEAK_SERVICE`, `PEAK_VERSION`,
 * `PEAK_WEIGHT` (0 for a release's gray instance, until the release gives it traffic) and
 * `PEAK_SUPERVISED=1`; a service passes the id to its `RpcServer` (`instanceId`) and its
 * `MetricsPusher` (`instance`) so scaling and release analysis can find its figures.
 *
 * For a program that runs it in its own process (the shop's chain) it has seams: `onEvent`
 * tells each start, ready and exit with the instance's pid (`instances()` gives the pids
 * now); `ready` makes an instance `starting` until its stdout (read from its log file)
 * shows a ready line, killing and restarting one not ready in time; `stderr: 'inherit'`
 * leaves an instance's stderr on the supervisor's; `restartBackoff` sets the restart delays.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Backoff, type BackoffOptions } from '../core/backoff.js';
import { ControlPlaneClient, type TokenSource } from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { parseServers } from '../core/server-list.js';
import { type AppSpec, splitCommand } from './app-spec.js';
import { CpuMeter, processAlive, processStartTicks } from './process-probe.js';
import type {
  DesiredGroup,
  InstanceReport,
  InstanceState,
  SupervisorOrders,
  SupervisorReport,
} from './supervisor-report.js';

const REPORT_ROUTE = '/api/v1/scale/reports';

/** Options of a {@link Supervisor}. */
export interface SupervisorOptions {
  spec: AppSpec;
  /** Where pid files and instance logs live; a restarted supervisor adopts from here. */
  stateDir: string;
  /** The control plane (absent: run the file's counts alone, no scaling or releases). */
  servers?: string | readonly string[];
  token?: TokenSource;
  /** Stable across restarts. Default `<hostname>/<app>`. */
  supervisorId?: string;
  /** Time between reports, ms. Default 1000. */
  reportEveryMs?: number;
  /** Time between checks of the instances, ms. Default 200. */
  tickMs?: number;
  /** Restart delays of a crashing instance. Default 500 ms doubling to 30 s. */
  restartBackoff?: BackoffOptions;
  /** An instance that ran this long has its restart backoff reset, ms. Default 10 000. */
  stableAfterMs?: number;
  logger?: Logger;
  /** The clock, epoch ms (injectable). Default `Date.now`. */
  clock?: () => number;
  /**
   * The ready check: with it, a started instance is `starting` until a line of its stdout
   * (read from its log file every tick) passes `line`, then `running` (a `ready` event
   * carries the line). One not ready within `timeoutMs` (default 60 000) is killed
   * (SIGKILL to its group) and restarted after the backoff, as a crash is. Without it an
   * instance is `running` once spawned. Adopted instances count as ready.
   */
  ready?: { line: (text: string) => boolean; timeoutMs?: number };
  /**
   * Where an instance's stderr goes: `log` (default, its log file) or `inherit` (the
   * supervisor's own stderr, for a supervisor in a program's process; an instance then
   * writes to whatever that is even after the supervisor dies).
   */
  stderr?: 'log' | 'inherit';
  /** Told of every start, ready and exit of an instance, synchronously (a throw is logged). */
  onEvent?: (event: SupervisorEvent) => void;
}

/** Which instance an event is about. */
export interface SupervisorEventInstance {
  id: string;
  service: string;
  version: string;
  /** Its process (group leader) pid. */
  pid: number;
  /** Crash restarts before this start. */
  restarts: number;
}

/** What {@link SupervisorOptions.onEvent} is told. */
export type SupervisorEvent =
  /** A process was spawned for the instance (its first start or a restart). */
  | { type: 'start'; instance: SupervisorEventInstance }
  /** Its ready line came (with `ready` set; without it, right after `start`). */
  | { type: 'ready'; instance: SupervisorEventInstance; line: string | undefined }
  | {
      type: 'exit';
      instance: SupervisorEventInstance;
      code: number | null;
      signal: NodeJS.Signals | null;
      /** Whether it had been ready (a start that failed: false). */
      ready: boolean;
      /** Killed for not being ready within `ready.timeoutMs`. */
      readyTimedOut: boolean;
      /** Stopped on purpose (scale-in, a version stopped, the supervisor stopping): no restart. */
      expected: boolean;
      /** When not expected: the restart comes after this many ms. */
      restartInMs?: number;
    };

/** The defaults of {@link SupervisorOptions}, in one place. */
export const SUPERVISOR_DEFAULTS = {
  reportEveryMs: 1000,
  tickMs: 200,
  restartBackoff: { initialMs: 500, maxMs: 30_000, factor: 2 },
  stableAfterMs: 10_000,
  readyTimeoutMs: 60_000,
} as const;

interface PidFile {
  id: string;
  service: string;
  version: string;
  command: string;
  gray: boolean;
  pid: number;
  startTicks: number | null;
  startedAt: number;
  restarts: number;
}

interface Managed {
  id: string;
  service: string;
  version: string;
  command: string;
  gray: boolean;
  slot: number;
  pid: number;
  child: ChildProcess | undefined;
  state: InstanceState;
  startedAt: number;
  restarts: number;
  backoff: Backoff;
  restartAt: number;
  stopDeadline: number;
  adopted: boolean;
  cpu: CpuMeter;
  cpuPercent: number | undefined;
  /** Whether the running process has been ready (its ready line seen, or no check). */
  ready: boolean;
  /** With a ready check: the start's deadline, ms. */
  readyDeadline: number;
  readyTimedOut: boolean;
  /** Where the ready check reads the log file from, and the partial line it holds. */
  logOffset: number;
  logRest: string;
}

/** Runs and scales the instances of an app file's services; see the module comment. */
export class Supervisor {
  readonly #spec: AppSpec;
  readonly #dir: string;
  readonly #http: ControlPlaneClient | undefined;
  readonly #id: string;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #opts: Required<
    Pick<SupervisorOptions, 'reportEveryMs' | 'tickMs' | 'stableAfterMs' | 'restartBackoff'>
  >;
  readonly #instances = new Map<string, Managed>();
  readonly #ready: SupervisorOptions['ready'];
  readonly #stderr: 'log' | 'inherit';
  readonly #onEvent: SupervisorOptions['onEvent'];
  #orders: SupervisorOrders | undefined;
  #tick: NodeJS.Timeout | undefined;
  #report: NodeJS.Timeout | undefined;
  #reporting = false;
  #stopping = false;
  #reachable: boolean | undefined;

  constructor(options: SupervisorOptions) {
    this.#spec = options.spec;
    this.#dir = path.resolve(options.stateDir);
    this.#id = options.supervisorId ?? `${os.hostname()}/${options.spec.app}`;
    this.#logger = options.logger ?? silentLogger();
    this.#now = options.clock ?? Date.now;
    this.#opts = {
      reportEveryMs: options.reportEveryMs ?? SUPERVISOR_DEFAULTS.reportEveryMs,
      tickMs: options.tickMs ?? SUPERVISOR_DEFAULTS.tickMs,
      stableAfterMs: options.stableAfterMs ?? SUPERVISOR_DEFAULTS.stableAfterMs,
      restartBackoff: options.restartBackoff ?? SUPERVISOR_DEFAULTS.restartBackoff,
    };
    this.#ready = options.ready;
    this.#stderr = options.stderr ?? 'log';
    this.#onEvent = options.onEvent;
    if (options.servers !== undefined) {
      const servers = parseServers(options.servers);
      this.#http = new ControlPlaneClient({
        servers,
        ...(options.token === undefined ? {} : { token: options.token }),
        timeoutMs: 2000,
        retries: servers.length - 1,
      });
    }
  }

  /** This supervisor's id, as the control plane knows it. */
  get id(): string {
    return this.#id;
  }

  /** Adopts what a previous run left alive, then starts the loops. */
  async start(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await this.#adopt();
    this.#reconcile();
    this.#tick = setInterval(() => this.#reconcile(), this.#opts.tickMs);
    if (this.#http !== undefined) {
      await this.#sendReport();
      this.#report = setInterval(() => void this.#sendReport(), this.#opts.reportEveryMs);
    }
  }

  /** The instances now, as they are reported. */
  instances(): InstanceReport[] {
    return [...this.#instances.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((m) => ({
        id: m.id,
        service: m.service,
        version: m.version,
        pid: m.pid,
        state: m.state,
        restarts: m.restarts,
        startedAt: m.startedAt,
        ...(m.cpuPercent === undefined ? {} : { cpuPercent: Math.round(m.cpuPercent * 10) / 10 }),
        adopted: m.adopted,
      }));
  }

  /** Whether the last report reached the control plane (undefined before the first). */
  get reachable(): boolean | undefined {
    return this.#reachable;
  }

  /**
   * Stops the loops; with `instances: 'stop'` (the default) stops every instance
   * gracefully first, with `'leave'` leaves them running for the next supervisor to adopt.
   */
  async stop(options: { instances?: 'stop' | 'leave' } = {}): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#report);
    if ((options.instances ?? 'stop') === 'stop') {
      for (const m of this.#instances.values()) this.#stopInstance(m);
      while ([...this.#instances.values()].length > 0) {
        this.#reconcile();
        await new Promise((r) => setTimeout(r, 50));
      }
    } else {
      for (const m of this.#instances.values()) m.child?.unref();
    }
    clearInterval(this.#tick);
    if (this.#http !== undefined && (options.instances ?? 'stop') === 'stop')
      await this.#sendReport();
  }

  /** What to run per service: the control plane's orders, else the app file's counts. */
  #desired(service: string): DesiredGroup[] | undefined {
    const ordered = this.#orders?.desired[service];
    if (ordered !== undefined) return ordered;
    if (this.#orders !== undefined || this.#reachable === false) {
      // Not named in the answer, or no answer: keep what runs (the file's count at first start).
      const running = [...this.#instances.values()].some((m) => m.service === service);
      if (running) return undefined;
    }
    const s = this.#spec.services.find((x) => x.name === service);
    return s === undefined
      ? []
      : [{ version: s.version, command: s.command, count: s.instances, gray: false }];
  }

  #reconcile(): void {
    const now = this.#now();
    for (const m of [...this.#instances.values()]) this.#watch(m, now);
    if (this.#stopping) return;
    for (const s of this.#spec.services) {
      const groups = this.#desired(s.name);
      if (groups === undefined) continue;
      const mine = [...this.#instances.values()].filter((m) => m.service === s.name);
      for (const m of mine)
        if (m.state !== 'stopping' && !groups.some((g) => g.version === m.version))
          this.#stopInstance(m);
      for (const g of groups) {
        // A promoted gray group is the primary now: its restarts get their full weight.
        for (const m of mine) if (m.version === g.version) m.gray = g.gray;
        const live = mine
          .filter((m) => m.version === g.version && m.state !== 'stopping')
          .sort((a, b) => a.slot - b.slot);
        for (let n = live.length; n < g.count; n++) this.#startNew(s.name, g);
        for (const m of live.slice(g.count).reverse()) this.#stopInstance(m);
      }
    }
  }

  /** Follows one instance: exits, restarts due, stop deadlines, CPU. */
  #watch(m: Managed, now: number): void {
    if (m.state === 'backoff') {
      if (this.#stopping) {
        this.#instances.delete(m.id);
        void rm(this.#pidFile(m.id), { force: true });
      } else if (now >= m.restartAt) this.#spawn(m);
      return;
    }
    if (m.child === undefined && !processAlive(m.pid)) {
      this.#exited(m, null, null);
      return;
    }
    if (m.state === 'stopping' && now >= m.stopDeadline) {
      this.#logger.warn({ instance: m.id, pid: m.pid }, 'graceful stop took too long; SIGKILL');
      this.#signal(m, 'SIGKILL');
      m.stopDeadline = Number.POSITIVE_INFINITY;
    }
    if (m.state === 'starting') this.#checkReady(m, now);
    if (m.state === 'running' || m.state === 'starting') m.cpuPercent = m.cpu.sample(m.pid, now);
  }

  /** The ready check of a starting instance: its log's new lines, or its deadline. */
  #checkReady(m: Managed, now: number): void {
    const check = this.#ready;
    if (check === undefined) return;
    let text = '';
    try {
      const fd = openSync(path.join(this.#dir, `${m.id}.log`), 'r');
      try {
        const buf = Buffer.alloc(64 * 1024);
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, m.logOffset);
          if (n <= 0) break;
          m.logOffset += n;
          text += buf.toString('utf8', 0, n);
        }
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      this.#logger.warn({ instance: m.id, err: errorMessage(err) }, 'reading the log failed');
    }
    const lines = (m.logRest + text).split('\n');
    m.logRest = lines.pop() ?? '';
    const line = lines.find((l) => check.line(l));
    if (line !== undefined) {
      m.state = 'running';
      m.ready = true;
      m.logRest = '';
      this.#emit({ type: 'ready', instance: this.#eventInstance(m), line });
      return;
    }
    if (now >= m.readyDeadline && !m.readyTimedOut) {
      m.readyTimedOut = true;
      this.#logger.warn(
        { instance: m.id, pid: m.pid, timeoutMs: this.#readyTimeoutMs() },
        'instance not ready in time; SIGKILL',
      );
      this.#signal(m, 'SIGKILL');
    }
  }

  #readyTimeoutMs(): number {
    return this.#ready?.timeoutMs ?? SUPERVISOR_DEFAULTS.readyTimeoutMs;
  }

  #eventInstance(m: Managed): SupervisorEventInstance {
    return { id: m.id, service: m.service, version: m.version, pid: m.pid, restarts: m.restarts };
  }

  #emit(event: SupervisorEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(event);
    } catch (err) {
      this.#logger.warn({ event: event.type, err: errorMessage(err) }, 'onEvent threw');
    }
  }

  #startNew(service: string, g: DesiredGroup): void {
    const taken = new Set(
      [...this.#instances.values()]
        .filter((m) => m.service === service && m.version === g.version)
        .map((m) => m.slot),
    );
    let slot = 1;
    while (taken.has(slot)) slot++;
    const m: Managed = {
      id: `${service}-${g.version}-${slot}`,
      service,
      version: g.version,
      command: g.command,
      gray: g.gray,
      slot,
      pid: 0,
      child: undefined,
      state: 'backoff',
      startedAt: this.#now(),
      restarts: 0,
      backoff: new Backoff(this.#opts.restartBackoff),
      restartAt: 0,
      stopDeadline: 0,
      adopted: false,
      cpu: new CpuMeter(),
      cpuPercent: undefined,
      ready: false,
      readyDeadline: 0,
      readyTimedOut: false,
      logOffset: 0,
      logRest: '',
    };
    this.#instances.set(m.id, m);
    this.#spawn(m);
  }

  #spawn(m: Managed): void {
    const spec = this.#spec.services.find((s) => s.name === m.service);
    const argv = splitCommand(m.command);
    const log = openSync(path.join(this.#dir, `${m.id}.log`), 'a');
    // The ready check reads what this start writes, from the end of the log as it is.
    m.logOffset = fstatSync(log).size;
    m.logRest = '';
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: this.#spec.cwd,
        env: {
          ...process.env,
          ...(spec?.env ?? {}),
          PEAK_INSTANCE_ID: m.id,
          PEAK_APP: this.#spec.app,
          PEAK_SERVICE: m.service,
          PEAK_VERSION: m.version,
          PEAK_WEIGHT: m.gray ? '0' : '100',
          PEAK_SUPERVISED: '1',
        },
        detached: true,
        stdio: ['ignore', log, this.#stderr === 'inherit' ? 'inherit' : log],
      });
    } finally {
      closeSync(log);
    }
    child.once('error', (err) => {
      this.#logger.warn({ instance: m.id, err: errorMessage(err) }, 'instance failed to start');
      if (m.child === child) this.#exited(m, null, null);
    });
    child.once('exit', (code, signal) => {
      if (m.child === child) this.#exited(m, code, signal);
    });
    m.child = child;
    m.pid = child.pid ?? 0;
    m.state = this.#ready === undefined ? 'running' : 'starting';
    m.ready = this.#ready === undefined;
    m.readyTimedOut = false;
    m.startedAt = this.#now();
    m.readyDeadline = m.startedAt + this.#readyTimeoutMs();
    m.adopted = false;
    m.cpu = new CpuMeter();
    m.cpuPercent = undefined;
    this.#logger.info({ instance: m.id, pid: m.pid, restarts: m.restarts }, 'instance started');
    if (m.pid > 0) void this.#writePidFile(m);
    this.#emit({ type: 'start', instance: this.#eventInstance(m) });
    if (m.ready) this.#emit({ type: 'ready', instance: this.#eventInstance(m), line: undefined });
  }

  #exited(m: Managed, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#instances.get(m.id) !== m || m.state === 'backoff') return;
    m.child = undefined;
    const exit = {
      type: 'exit' as const,
      instance: this.#eventInstance(m),
      code,
      signal,
      ready: m.ready,
      readyTimedOut: m.readyTimedOut,
    };
    if (m.state === 'stopping' || this.#stopping) {
      this.#logger.info({ instance: m.id, code, signal }, 'instance stopped');
      this.#instances.delete(m.id);
      void rm(this.#pidFile(m.id), { force: true });
      this.#emit({ ...exit, expected: true });
      return;
    }
    const now = this.#now();
    if (now - m.startedAt >= this.#opts.stableAfterMs) m.backoff.reset();
    m.restarts++;
    m.state = 'backoff';
    m.pid = 0;
    m.restartAt = now + m.backoff.next();
    this.#logger.warn(
      { instance: m.id, code, signal, restarts: m.restarts, restartInMs: m.restartAt - now },
      'instance exited; restarting after backoff',
    );
    this.#emit({ ...exit, expected: false, restartInMs: m.restartAt - now });
  }

  #stopInstance(m: Managed): void {
    if (m.state === 'stopping') return;
    if (m.state === 'backoff') {
      this.#instances.delete(m.id);
      void rm(this.#pidFile(m.id), { force: true });
      return;
    }
    const spec = this.#spec.services.find((s) => s.name === m.service);
    m.state = 'stopping';
    m.stopDeadline = this.#now() + (spec?.stopTimeoutMs ?? 10_000);
    this.#logger.info({ instance: m.id, pid: m.pid }, 'stopping instance gracefully (SIGTERM)');
    this.#signal(m, 'SIGTERM');
  }

  #signal(m: Managed, signal: NodeJS.Signals): void {
    if (m.pid <= 0) return;
    try {
      process.kill(-m.pid, signal);
    } catch {
      try {
        process.kill(m.pid, signal);
      } catch {
        // gone already
      }
    }
  }

  #pidFile(id: string): string {
    return path.join(this.#dir, `${id}.json`);
  }

  async #writePidFile(m: Managed): Promise<void> {
    const f: PidFile = {
      id: m.id,
      service: m.service,
      version: m.version,
      command: m.command,
      gray: m.gray,
      pid: m.pid,
      startTicks: processStartTicks(m.pid) ?? null,
      startedAt: m.startedAt,
      restarts: m.restarts,
    };
    await writeFile(this.#pidFile(m.id), `${JSON.stringify(f)}\n`).catch((err) =>
      this.#logger.warn({ instance: m.id, err: errorMessage(err) }, 'writing the pid file failed'),
    );
  }

  /** Takes over the instances a previous run left alive; removes stale pid files. */
  async #adopt(): Promise<void> {
    for (const name of await readdir(this.#dir)) {
      if (!name.endsWith('.json')) continue;
      const file = path.join(this.#dir, name);
      let f: PidFile;
      try {
        f = JSON.parse(await readFile(file, 'utf8')) as PidFile;
      } catch {
        await rm(file, { force: true });
        continue;
      }
      const same =
        processAlive(f.pid) && (f.startTicks === null || processStartTicks(f.pid) === f.startTicks);
      if (!same || !this.#spec.services.some((s) => s.name === f.service)) {
        if (same) this.#logger.warn({ instance: f.id }, 'service no longer in the app file');
        await rm(file, { force: true });
        continue;
      }
      const slot = Number(f.id.slice(f.id.lastIndexOf('-') + 1));
      this.#instances.set(f.id, {
        id: f.id,
        service: f.service,
        version: f.version,
        command: f.command,
        gray: f.gray,
        slot: Number.isInteger(slot) ? slot : 0,
        pid: f.pid,
        child: undefined,
        state: 'running',
        startedAt: f.startedAt,
        restarts: f.restarts,
        backoff: new Backoff(this.#opts.restartBackoff),
        restartAt: 0,
        stopDeadline: 0,
        adopted: true,
        cpu: new CpuMeter(),
        cpuPercent: undefined,
        ready: true,
        readyDeadline: 0,
        readyTimedOut: false,
        logOffset: 0,
        logRest: '',
      });
      this.#logger.info({ instance: f.id, pid: f.pid }, 'adopted a running instance');
    }
  }

  /** The report this supervisor sends. */
  report(): SupervisorReport {
    return {
      supervisorId: this.#id,
      app: this.#spec.app,
      host: os.hostname(),
      pid: process.pid,
      services: this.#spec.services.map((s) => ({
        name: s.name,
        version: s.version,
        command: s.command,
        instances: s.instances,
      })),
      instances: this.instances(),
    };
  }

  async #sendReport(): Promise<void> {
    if (this.#http === undefined || this.#reporting) return;
    this.#reporting = true;
    try {
      const orders = await this.#http.post<SupervisorOrders>(REPORT_ROUTE, this.report());
      if (!this.#stopping) this.#orders = orders;
      if (this.#reachable === false) this.#logger.info('the control plane answers again');
      this.#reachable = true;
    } catch (err) {
      if (this.#reachable !== false)
        this.#logger.warn(
          { err: errorMessage(err) },
          'reporting to the control plane failed; keeping the instances as they are',
        );
      this.#reachable = false;
      this.#orders = undefined;
    } finally {
      this.#reporting = false;
    }
  }
}
