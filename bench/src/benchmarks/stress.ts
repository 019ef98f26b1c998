/**
 * The stress generator against autocannon 9 (npm, in this process) and wrk 4.1 (the
 * Debian package, one thread, its own process; installed with apt-get when missing), all on
 * the same HTTP echo (node:http in its own process, 2-byte answer, keep-alive), in one run:
 *
 * 1. Cost: 64 connections (Peakware: 64 virtual users) as fast as the echo answers, 5 s
 *    each; requests/s per CPU core = requests ÷ the generator's own CPU seconds (so a
 *    saturated echo does not hide a generator's cost), and each tool's p50/p99.
 *    Peakware's open model at 60 % of autocannon's rate is measured too (the usual way to
 *    run it: its cost per request and its p50/p99 at a rate the echo sustains), and
 *    autocannon held to that same rate (`overallRate`, 64 connections) beside it: a tool
 *    sending below the echo's ceiling gets fewer answers per wake-up, whoever it is.
 * 2. Accuracy under a stall: the echo blocks its event loop for 100 ms once a second. Each
 *    tool runs 4 s: Peakware at a constant 1000 requests/s (open model, latency from the
 *    scheduled send time), autocannon and wrk closed-loop with 10 connections. A stall of
 *    100 ms a second is 10 % of the time; an honest p99 sees it. A closed loop sends nothing
 *    while the server stalls, so only its 10 waiting requests see it and its p99 hides it.
 *
 * `--serve echo` runs the echo (this file as a child process).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import { constantRate, defineScenario, httpStep, startRun, virtualUsers } from 'peakware/stress';
import { type Benchmark, round } from '../bench.js';
import { startChildServer } from '../child-server.js';
import { debianTool } from '../debian-tool.js';

async function serveEcho(): Promise<number> {
  let stallEveryMs = 0;
  let lastStall = 0;
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/__stall/')) {
      stallEveryMs = Number(req.url.slice('/__stall/'.length));
      lastStall = Date.now();
      res.end('ok');
      return;
    }
    if (stallEveryMs > 0 && Date.now() - lastStall >= stallEveryMs) {
      lastStall = Date.now();
      const until = performance.now() + 100;
      while (performance.now() < until) {
        // the planted stall: the event loop is blocked, as in a long GC pause
      }
    }
    req.resume();
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

if (process.argv[2] === '--serve') {
  const port = await serveEcho();
  process.stdout.write(`${port}\n`);
}

interface ToolFigures {
  requests: number;
  rps: number;
  cpuS: number;
  perCore: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const cpuNowS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function setStall(port: number, everyMs: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/__stall/${everyMs}`);
  await res.text();
}

async function runPeakware(
  url: string,
  load: ReturnType<typeof constantRate> | ReturnType<typeof virtualUsers>,
): Promise<ToolFigures> {
  const cpu0 = cpuNowS();
  const report = await startRun(
    defineScenario({
      name: 'bench-echo',
      target: url,
      stress: false,
      load,
      maxConnections: 64,
      steps: [httpStep({ name: 'get', path: '/' })],
    }),
  ).done;
  const cpuS = cpuNowS() - cpu0;
  const requests = report.totals.requests;
  return {
    requests,
    rps: report.totals.throughput,
    cpuS,
    perCore: requests / cpuS,
    p50Ms: report.latency.p50Ms,
    p99Ms: report.latency.p99Ms,
    maxMs: report.latency.maxMs,
  };
}

async function runAutocannon(
  url: string,
  connections: number,
  seconds: number,
  overallRate?: number,
): Promise<ToolFigures> {
  const cpu0 = cpuNowS();
  const r = await autocannon({
    url,
    connections,
    duration: seconds,
    ...(overallRate === undefined ? {} : { overallRate }),
  });
  const cpuS = cpuNowS() - cpu0;
  return {
    requests: r.requests.total,
    rps: r.requests.total / seconds,
    cpuS,
    perCore: r.requests.total / cpuS,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
  };
}

/** A wrk duration (`812.00us`, `1.20ms`, `2.00s`) in ms. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (m === null) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

/** Runs wrk in a shell that prints its children's CPU time (`times`) after it. */
async function runWrk(
  bin: string,
  url: string,
  connections: number,
  seconds: number,
): Promise<ToolFigures> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      'sh',
      ['-c', `"$0" -t1 -c${connections} -d${seconds}s --latency "$1"; times`, bin, url],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
    });
    child.on('error', reject);
    child.on('exit', () => resolve(text));
  });
  const lat = (p: string) => wrkMs(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  // `times`: the shell's own user/sys, then its children's: "0m1.234s 0m0.567s"
  const times = [...out.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)].at(-1);
  const cpuS =
    times === undefined
      ? Number.NaN
      : Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]);
  const max = /Latency\s+\S+\s+\S+\s+(\S+)/.exec(out)?.[1];
  return {
    requests,
    rps: requests / seconds,
    cpuS,
    perCore: requests / cpuS,
    p50Ms: lat('50'),
    p99Ms: lat('99'),
    maxMs: max === undefined ? Number.NaN : wrkMs(max),
  };
}

export const benchmark: Benchmark = {
  name: 'stress',
  description:
    'peakware/stress generator vs autocannon and wrk on one HTTP echo: requests/s per CPU core, p50/p99, and a planted 100 ms stall',
  async run({ quick, progress }) {
    const seconds = quick ? 2 : 5;
    const stallSeconds = quick ? 3 : 4;
    const { child, port } = await startChildServer(import.meta.url, [], 'echo');
    const url = `http://127.0.0.1:${port}`;
    const wrk = debianTool('wrk', 'wrk', progress);
    const notes: string[] = [];
    if (wrk === undefined)
      notes.push('wrk: not installed and could not be (apt-get needs root); its rows are missing');
    try {
      // warm-up: JIT and connections of every tool
      await runPeakware(url, virtualUsers(16, 1));
      await runAutocannon(url, 16, 1);

      progress(`cost: peakware (64 virtual users, ${seconds} s)`);
      const pwClosed = await runPeakware(url, virtualUsers(64, seconds));
      progress(`cost: autocannon (64 connections, ${seconds} s)`);
      const ac = await runAutocannon(url, 64, seconds);
      const wk = wrk === undefined ? undefined : await runWrk(wrk, url, 64, seconds);
      const openRate = Math.max(100, Math.round(ac.rps * 0.6));
      progress(`cost: peakware open model at ${openRate}/s (${seconds} s)`);
      const pwOpen = await runPeakware(url, constantRate(openRate, seconds));
      progress(`cost: autocannon held to ${openRate}/s (${seconds} s)`);
      const acRate = await runAutocannon(url, 64, seconds, openRate);

      progress('stall: 100 ms once a second');
      await setStall(port, 1000);
      const sPw = await runPeakware(url, constantRate(1000, stallSeconds));
      await setStall(port, 1000);
      const sAc = await runAutocannon(url, 10, stallSeconds);
      await setStall(port, 1000);
      const sWk = wrk === undefined ? undefined : await runWrk(wrk, url, 10, stallSeconds);
      await setStall(port, 0);

      const figures: Record<string, number> = {};
      const put = (name: string, f: ToolFigures | undefined) => {
        if (f === undefined) return;
        for (const [k, v] of Object.entries(f)) figures[`${name}.${k}`] = round(v, 4);
      };
      put('peakware.closed', pwClosed);
      put('peakware.open', pwOpen);
      put('autocannon', ac);
      put('autocannon.sameRate', acRate);
      put('wrk', wk);
      put('stall.peakware', sPw);
      put('stall.autocannon', sAc);
      put('stall.wrk', sWk);
      const ratios: Record<string, number> = {
        'peakware.closed/autocannon.perCore': round(pwClosed.perCore / ac.perCore),
        'peakware.open/autocannon.perCore': round(pwOpen.perCore / ac.perCore),
        'peakware.open/autocannon.sameRate.perCore': round(pwOpen.perCore / acRate.perCore),
        'stall.peakware.p99Ms': sPw.p99Ms,
        'stall.autocannon.p99Ms': sAc.p99Ms,
      };
      if (wk !== undefined) {
        ratios['peakware.closed/wrk.perCore'] = round(pwClosed.perCore / wk.perCore);
        ratios['peakware.open/wrk.perCore'] = round(pwOpen.perCore / wk.perCore);
      }
      if (sWk !== undefined) ratios['stall.wrk.p99Ms'] = sWk.p99Ms;
      const row = (label: string, f: ToolFigures | undefined) =>
        f === undefined
          ? [label, '-', '-', '-', '-', '-', '-']
          : [
              label,
              Math.round(f.rps),
              round(f.cpuS),
              Math.round(f.perCore),
              f.p50Ms,
              f.p99Ms,
              f.maxMs,
            ];
      notes.push(
        'per core = requests ÷ the generator process’s own CPU seconds (user + system); the echo is one Node process and is the ceiling of every tool’s req/s here',
        'stall rows: the echo blocks 100 ms once a second; Peakware runs its open model at 1000/s (latency from the scheduled send time), autocannon and wrk are closed loops of 10 connections',
      );
      return {
        figures,
        ratios,
        table: [
          ['tool', 'req/s', 'CPU s', 'req/s per core', 'p50 ms', 'p99 ms', 'max ms'],
          row('peakware (64 virtual users)', pwClosed),
          row(`peakware (open, ${openRate}/s)`, pwOpen),
          row('autocannon (64 connections)', ac),
          row(`autocannon (64 conn., held to ${openRate}/s)`, acRate),
          row('wrk -t1 (64 connections)', wk),
          row('stall: peakware (open, 1000/s)', sPw),
          row('stall: autocannon (10 conn.)', sAc),
          row('stall: wrk (10 conn.)', sWk),
        ],
        notes,
      };
    } finally {
      child.kill('SIGTERM');
    }
  },
};
