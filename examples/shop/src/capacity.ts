/**
 * The capacity run: open-model load on the whole chain in steps of rising arrival rate,
 * with the guard limits lifted (the chain is measured, not the rules) and plenty of stock.
 * A step passes when its p99 (from the scheduled send time) is at most 100 ms and fewer
 * than 0.1 % of its buys failed; the capacity is the highest step that passed. Each step
 * also reports the CPU every process of the chain used per order (read from /proc, the
 * PostgreSQL instances with all their backends), the stages' response times from the
 * processes' own per-second metrics, and the books check after the step has settled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Chain, howItEnded } from './chain.js';
import type { LoadResult, LoadStep } from './load-process.js';
import { booksBalance, releaseOrphanDeductions, settledLedger } from './shop-database.js';
import { readLiveMetrics } from './shop-monitoring.js';

/** The pass mark of a step. */
export const CAPACITY_SLO = { p99Ms: 100, maxErrorShare: 0.001 } as const;

/** How the capacity run goes. */
export interface CapacityOptions {
  /** Arrival rates to try, buys/s, rising. */
  rates: number[];
  stepSeconds: number;
  hotSku: string;
  regularSku: string;
  regularShare: number;
  /** Stock of the hot item at the start (the books are checked against it). */
  stock: number;
  /** Called when a step starts and when it has been measured. */
  onStep?: (event: { rate: number; result?: StepFigures }) => void;
}

/** CPU µs per placed order of one kind of process (all its instances summed). */
export type CpuByProcess = Record<string, number>;

/** What one step measured. */
export interface StepFigures {
  rate: number;
  /** Orders placed per second over the step. */
  placedPerSecond: number;
  load: LoadResult;
  passed: boolean;
  /** CPU µs per placed order, by process kind, and their sum. */
  cpuUsPerOrder: CpuByProcess & { total: number };
  /**
   * Read and write system calls per placed order (`/proc/<pid>/io` syscr + syscw), by process
   * kind, and their sum: a count of the chain's socket reads and writes, steady on a busy
   * machine where CPU time is not. Node processes and Redis use read/write on sockets and are
   * counted; PostgreSQL's backends use send/recv, which these counters do not see.
   */
  syscallsPerOrder: Record<string, number> & { total: number };
  /** Share of the machine's cores the chain used during the step (1 = all busy). */
  machineBusy: number;
  /** Mean response time per stage (service resource), ms, from the pushed metrics. */
  stagesMs: Record<string, number>;
  books: { consistent: boolean; orders: number; pointsAwarded: number; oversold: number };
  /**
   * The machine second by second over the step (aligned with `load.bySecond`), so a second
   * whose p99 jumped can be put beside what the cores did then: cores the chain's processes
   * used (by kind), cores other processes on the machine used, interrupt time, and cores the
   * hypervisor stole or the disk held (`/proc/stat`).
   */
  machineBySecond: MachineSecond[];
}

/** One second of the machine during a step, in cores (1 = one core busy all second). */
export interface MachineSecond {
  chain: number;
  /** The chain's cores by process kind. */
  byKind: Record<string, number>;
  /** The load generator's process (on the same machine, as in every run here). */
  loadGenerator: number;
  /** Processes that are neither the chain's nor the load generator (this machine is shared). */
  others: number;
  /**
   * Interrupt and softirq time (loopback packets are delivered there, partly outside any
   * process's own time), which no process is charged with.
   */
  irq: number;
  steal: number;
  iowait: number;
}

/** The whole run. */
export interface CapacityReport {
  slo: typeof CAPACITY_SLO;
  /** Highest rate that passed (0 if none did). */
  capacity: number;
  steps: StepFigures[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface ProcStat {
  ppid: number;
  /** utime + stime, and the reaped children's cutime + cstime, in ticks. */
  self: number;
  children: number;
}

/** A /proc file's text, or undefined when its process is gone. */
function procText(file: string): string | undefined {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
}

/**
 * Every process's CPU ticks. The files are read at once, in one synchronous pass: read in
 * turn with awaits on a busy machine they spread over a few hundred ms, and two samples a
 * second apart then disagree with the machine's own counters by that much. Synchronous, as
 * this runs every second inside the control plane's process, whose CPU a run charges to the
 * chain: 1.5–4 ms of CPU a pass over ~65 processes, against 8–12 ms for the same files read
 * with `fs/promises` (its thread pool and a promise per file).
 */
function readProcs(): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>();
  const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  const texts = pids.map((pid) => procText(`/proc/${pid}/stat`));
  texts.forEach((text, i) => {
    if (text === undefined) return;
    // Fields after the command (which may hold spaces) start at field 3 (state).
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    stats.set(Number(pids[i]), {
      ppid: Number(f[1]),
      self: Number(f[11]) + Number(f[12]),
      children: Number(f[13]) + Number(f[14]),
    });
  });
  return stats;
}

/** `root` and every process under it. */
function tree(procs: Map<number, ProcStat>, root: number): number[] {
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (procs.has(pid)) out.push(pid);
    for (const [child, c] of procs) if (c.ppid === pid) stack.push(child);
  }
  return out;
}

/**
 * Inventory and order processes each that a capacity run starts on a machine with `cores`
 * cores unless told otherwise: one per two cores (at least one). Each process adds wake-ups
 * and smaller batches per order; on 2 cores one of each carried 1.7x the orders of two of
 * each (BENCHMARKS.md, shop), while the sale keeps two of each so a killed one has a twin.
 */
export function capacityInstances(cores: number): number {
  return Math.max(1, Math.floor(cores / 2));
}

/** Read and write system calls a process has made (`/proc/<pid>/io`), 0 when unreadable. */
async function syscallsOf(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  const r = /syscr:\s*(\d+)/.exec(text);
  const w = /syscw:\s*(\d+)/.exec(text);
  return Number(r?.[1] ?? 0) + Number(w?.[1] ?? 0);
}

/** CPU ticks and read/write system calls of one kind of process, summed. */
interface KindSample {
  ticks: number;
  syscalls: number;
}

/**
 * Per process kind: the control plane (this process, itself only), PostgreSQL and Redis
 * (their whole trees), the services. CPU includes reaped children; system calls count live
 * processes only.
 */
async function sampleCpu(chain: Chain, withSyscalls = true): Promise<Record<string, KindSample>> {
  const procs = readProcs();
  const out: Record<string, KindSample> = {};
  const add = async (kind: string, pids: number[], selfOnly = false) => {
    const k = out[kind] ?? { ticks: 0, syscalls: 0 };
    out[kind] = k;
    for (const pid of pids) {
      const st = procs.get(pid);
      if (st !== undefined) k.ticks += st.self + (selfOnly ? 0 : st.children);
      if (withSyscalls) k.syscalls += await syscallsOf(pid);
    }
  };
  await add('control plane', [process.pid], true);
  const { primary, shard1 } = chain.postgresPids;
  if (primary !== undefined) await add('postgres #1', tree(procs, primary));
  if (shard1 !== undefined) await add('postgres #2', tree(procs, shard1));
  if (chain.redisPid !== undefined) await add('redis', tree(procs, chain.redisPid));
  for (const p of chain.processes) {
    if (p.pid !== undefined) await add(p.role, tree(procs, p.pid));
  }
  return out;
}

/** One process's own CPU ticks (utime + stime), 0 when it is gone. */
function processTicks(pid: number): number {
  const text = procText(`/proc/${pid}/stat`);
  if (text === undefined) return 0;
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** The machine's CPU time so far, from the first line of `/proc/stat`, in ticks. */
async function machineTicks(): Promise<{
  busy: number;
  irq: number;
  steal: number;
  iowait: number;
}> {
  const text = await readFile('/proc/stat', 'utf8').catch(() => '');
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice
  const f = (text.split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system, irq: irq + softirq, steal, iowait };
}

/**
 * Samples the machine once a second while a step runs (what `machineBySecond` reports):
 * every process's CPU ticks from `/proc` and the machine's from `/proc/stat`. One pass over
 * `/proc` a second, in this process; the sampler's own cost lands in "control plane".
 */
class MachineSampler {
  readonly #chain: Chain;
  readonly #seconds: MachineSecond[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> = Promise.resolve();
  readonly #loadPid: number | undefined;
  #last:
    | {
        at: number;
        kinds: Record<string, KindSample>;
        load: number;
        machine: Awaited<ReturnType<typeof machineTicks>>;
      }
    | undefined;

  constructor(chain: Chain, loadPid: number | undefined) {
    this.#chain = chain;
    this.#loadPid = loadPid;
    this.#busy = this.#sample();
    this.#timer = setInterval(() => {
      this.#busy = this.#busy.then(() => this.#sample());
    }, 1000);
  }

  async #sample(): Promise<void> {
    const began = performance.now();
    const [kinds, machine, load] = await Promise.all([
      sampleCpu(this.#chain, false),
      machineTicks(),
      this.#loadPid === undefined ? 0 : processTicks(this.#loadPid),
    ]);
    // The reads' midpoint stands for when they were taken.
    const at = (began + performance.now()) / 2;
    const last = this.#last;
    this.#last = { at, kinds, machine, load };
    if (last === undefined) return;
    const perCore = (ticks: number) =>
      Math.round((ticks / TICKS_PER_SECOND / ((at - last.at) / 1000)) * 100) / 100;
    const byKind: Record<string, number> = {};
    let chainTicks = 0;
    for (const [kind, now] of Object.entries(kinds)) {
      const d = Math.max(0, now.ticks - (last.kinds[kind]?.ticks ?? now.ticks));
      byKind[kind] = perCore(d);
      chainTicks += d;
    }
    const loadTicks = Math.max(0, load - last.load);
    this.#seconds.push({
      chain: perCore(chainTicks),
      byKind,
      loadGenerator: perCore(loadTicks),
      others: perCore(Math.max(0, machine.busy - last.machine.busy - chainTicks - loadTicks)),
      irq: perCore(machine.irq - last.machine.irq),
      steal: perCore(machine.steal - last.machine.steal),
      iowait: perCore(machine.iowait - last.machine.iowait),
    });
  }

  /** Stops sampling with a last sample for the part-second since the one before; the seconds sampled. */
  async stop(): Promise<MachineSecond[]> {
    clearInterval(this.#timer);
    await this.#busy;
    if (this.#last !== undefined && performance.now() - this.#last.at > 300) await this.#sample();
    return this.#seconds;
  }
}

/** The load generator: one process for every step of a run (see load-process.ts). */
class LoadRunner {
  readonly #child: ChildProcess;
  #out = '';
  #waiting: { resolve: (r: LoadResult) => void; reject: (e: Error) => void } | undefined;
  #ended: Error | undefined;

  /** The generator's process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  constructor() {
    this.#child = spawn(process.execPath, [path.join(here, 'load-process.js')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#child.stdout!.on('data', (c: Buffer) => {
      this.#out += c.toString();
      const nl = this.#out.indexOf('\n');
      if (nl < 0) return;
      const line = this.#out.slice(0, nl);
      this.#out = this.#out.slice(nl + 1);
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.resolve(JSON.parse(line) as LoadResult);
    });
    this.#child.once('exit', (code, signal) => {
      this.#ended = new Error(`the load process ended (${howItEnded(code, signal)})`);
      this.#waiting?.reject(this.#ended);
      this.#waiting = undefined;
    });
  }

  /** Runs one step; rejects if the generator dies or overruns the step by far. */
  run(step: LoadStep): Promise<LoadResult> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.#child.kill('SIGKILL'),
        (step.seconds + step.timeoutMs / 1000 + 30) * 1000,
      );
      this.#waiting = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#child.stdin!.write(`${JSON.stringify(step)}\n`);
    });
  }

  /** Ends the generator (its stdin), killing it if it does not go. */
  async close(): Promise<void> {
    if (this.#ended !== undefined) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Checks the books after a step: nothing oversold, every deduction an order, every order
 * one award, the stock engine's copies in agreement. When deductions outnumber orders (a
 * failed buy, here or in the warm-up, left a deduction whose order never came), it waits
 * out the order service's deadline and statement timeout, releases the orphans with the
 * compensation sweep, and reads the books again.
 */
async function checkBooks(chain: Chain, options: CapacityOptions): Promise<StepFigures['books']> {
  let consistent = true;
  let orders = 0;
  let pointsAwarded = 0;
  let oversold = 0;
  for (const sku of [options.hotSku, options.regularSku]) {
    const read = () => settledLedger(chain.shopPool, chain.stock, chain.orders, sku);
    let books = await read();
    if (books.unitsDeducted > books.unitsOrdered) {
      await new Promise((r) => setTimeout(r, 4500));
      await releaseOrphanDeductions(chain.shopPool, chain.stock, chain.orders, sku, 0);
      books = await read();
    }
    consistent &&= booksBalance(books);
    orders += books.orders;
    pointsAwarded += books.pointsAwarded;
    oversold += Math.max(0, books.unitsDeducted - books.initial);
  }
  return { consistent, orders, pointsAwarded, oversold };
}

/** Runs the steps until one fails (or all pass) and reports each. */
export async function runCapacity(chain: Chain, options: CapacityOptions): Promise<CapacityReport> {
  const load = new LoadRunner();
  try {
    return await runSteps(chain, options, load);
  } finally {
    await load.close();
  }
}

async function runSteps(
  chain: Chain,
  options: CapacityOptions,
  runner: LoadRunner,
): Promise<CapacityReport> {
  const steps: StepFigures[] = [];
  let userBase = 0;
  // A warm-up, not reported, as a load test starts (k6's ramping arrival rate, PTS's warm-up):
  // the first calls open connections and compile code, and a chain that goes from idle to
  // its first step's rate at once spends that step's first seconds doing so (p99 of seconds
  // while it lasts). So the rate climbs to the first step's in up to four stages of two
  // seconds: 50/s, then a quarter, half and all of the first step's rate (those above 50/s).
  const first = options.rates[0] ?? 50;
  const stages = [50, first / 4, first / 2, first]
    .map(Math.round)
    .filter((r, i) => i === 0 || r > 50);
  for (const rate of stages) {
    await runner.run({
      gatewayUrl: chain.gatewayUrl,
      apiKey: chain.gatewayKey,
      rate,
      seconds: 2,
      hotSku: options.hotSku,
      regularSku: options.regularSku,
      regularShare: options.regularShare,
      userBase,
      timeoutMs: 5000,
    });
    userBase += 1_000_000;
  }
  for (const rate of options.rates) {
    options.onStep?.({ rate });
    const before = await sampleCpu(chain);
    const wallStart = performance.now();
    const seconds = new MachineSampler(chain, runner.pid);
    const load = await runner.run({
      gatewayUrl: chain.gatewayUrl,
      apiKey: chain.gatewayKey,
      rate,
      seconds: options.stepSeconds,
      hotSku: options.hotSku,
      regularSku: options.regularSku,
      regularShare: options.regularShare,
      userBase,
      timeoutMs: 5000,
    });
    const wallSeconds = (performance.now() - wallStart) / 1000;
    const machineBySecond = await seconds.stop();
    const after = await sampleCpu(chain);
    userBase += 1_000_000;
    const placed = Math.max(1, load.placed);
    const cpu: CpuByProcess = {};
    const syscalls: Record<string, number> = {};
    let total = 0;
    let totalSyscalls = 0;
    for (const [kind, now] of Object.entries(after)) {
      const was = before[kind] ?? { ticks: 0, syscalls: 0 };
      const us = (((now.ticks - was.ticks) / TICKS_PER_SECOND) * 1e6) / placed;
      cpu[kind] = Math.round(us);
      total += us;
      const calls = (now.syscalls - was.syscalls) / placed;
      syscalls[kind] = Math.round(calls * 10) / 10;
      totalSyscalls += calls;
    }
    const stages: Record<string, number> = {};
    const metrics = await readLiveMetrics(chain.admin, Math.ceil(wallSeconds));
    for (const m of metrics) {
      if (m.qps > 0) stages[`${m.service} ${m.resource}`] = Math.round(m.rtAvgMs * 10) / 10;
    }
    const books = await checkBooks(chain, options);
    const failedShare = load.errors / Math.max(1, load.scheduled);
    const figures: StepFigures = {
      rate,
      placedPerSecond: Math.round(load.placed / load.seconds),
      load,
      passed:
        load.latencyMs.p99 <= CAPACITY_SLO.p99Ms &&
        failedShare < CAPACITY_SLO.maxErrorShare &&
        books.consistent,
      cpuUsPerOrder: { ...cpu, total: Math.round(total) },
      syscallsPerOrder: { ...syscalls, total: Math.round(totalSyscalls) },
      machineBusy:
        Math.round(((total * placed) / 1e6 / wallSeconds / os.availableParallelism()) * 100) / 100,
      stagesMs: stages,
      books,
      machineBySecond,
    };
    steps.push(figures);
    options.onStep?.({ rate, result: figures });
    if (!figures.passed) break;
  }
  const passed = steps.filter((s) => s.passed);
  return {
    slo: CAPACITY_SLO,
    capacity: passed.length === 0 ? 0 : passed.at(-1)!.rate,
    steps,
  };
}
