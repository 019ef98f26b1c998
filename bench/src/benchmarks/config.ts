/**
 * Config push latency: from the moment a publish is sent (`PUT /api/v1/config/items/...`)
 * to the moment each of 1,000 subscribed clients holds the new value, on loopback, with
 * the clients spread over 4 child processes (each client its own SSE stream through
 * `ConfigClient`). Beside it, the polling baseline: the same 1,000 clients reading
 * `GET /api/v1/config/entries` every 5 s (what a client without push does; at every 1 s,
 * 1,000 pollers saturated the control plane's connection pool on the 2-core test machine
 * and reads fell 10-20 s behind, so the baseline uses a rate the server sustains).
 *
 * Latency is measured across processes with `performance.timeOrigin + performance.now()`
 * (one machine, one clock): the publisher puts its send time into the value.
 *
 * Run as a script with `--clients`, this file is a subscriber process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ConfigClient } from 'peakware/config';
import { PeakServer } from 'peakware/server';
import { type Benchmark, median, round } from '../bench.js';

const APP = 'bench';
const ITEM = 'push/value';
const now = () => performance.timeOrigin + performance.now();

interface Value {
  seq: number;
  t: number;
}

/** A subscriber process: `--clients <url> <count> <push|poll> <pollMs>`. */
async function runClients(url: string, count: number, mode: string, pollMs: number): Promise<void> {
  // Per seq: latencies of the clients that have it.
  const got = new Map<number, number[]>();
  const record = (raw: string) => {
    let v: Value;
    try {
      v = JSON.parse(raw) as Value;
    } catch {
      return;
    }
    const t = now();
    let list = got.get(v.seq);
    if (list === undefined) {
      list = [];
      got.set(v.seq, list);
    }
    list.push(t - v.t);
    if (list.length === count) process.stdout.write(`got ${v.seq}\n`);
  };
  const closers: (() => Promise<void>)[] = [];
  if (mode === 'push') {
    const clients = Array.from(
      { length: count },
      (_, i) => new ConfigClient({ servers: [url], app: APP, instanceId: `c${process.pid}-${i}` }),
    );
    for (const c of clients) {
      c.watch(ITEM, (e) => record(e.value));
      closers.push(() => c.close());
    }
    // Open the streams in batches so the server is not hit by 250 connects at once.
    for (let i = 0; i < clients.length; i += 50) {
      await Promise.all(clients.slice(i, i + 50).map((c) => c.start(10_000)));
    }
  } else {
    const last = new Array<number>(count).fill(0);
    const timers: NodeJS.Timeout[] = [];
    for (let i = 0; i < count; i++) {
      const poll = async () => {
        try {
          const res = await fetch(`${url}/api/v1/config/entries?app=${APP}`, {
            signal: AbortSignal.timeout(5000),
          });
          const body = (await res.json()) as {
            entries: { group: string; key: string; value: string }[];
          };
          const e = body.entries.find((x) => `${x.group}/${x.key}` === ITEM);
          if (e === undefined) return;
          const v = JSON.parse(e.value) as Value;
          if (v.seq > last[i]!) {
            last[i] = v.seq;
            record(e.value);
          }
        } catch {
          // a failed poll is just a late one
        }
      };
      // Random phase, like independent instances.
      const first = setTimeout(() => {
        void poll();
        timers.push(setInterval(() => void poll(), pollMs));
      }, Math.random() * pollMs);
      timers.push(first);
    }
    closers.push(async () => {
      for (const t of timers) clearInterval(t);
    });
  }
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'report') {
      process.stdout.write(`report ${JSON.stringify(Object.fromEntries(got))}\n`);
      got.clear();
    } else if (line === 'exit') break;
  }
  await Promise.all(closers.map((c) => c()));
  process.exit(0);
}

interface ClientProcess {
  child: ChildProcess;
  lines: string[];
  waiters: Set<() => void>;
}

function startClients(
  url: string,
  count: number,
  mode: 'push' | 'poll',
  pollMs: number,
): Promise<ClientProcess> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), '--clients', url, String(count), mode, String(pollMs)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const p: ClientProcess = { child, lines: [], waiters: new Set() };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    p.lines.push(line);
    for (const w of p.waiters) w();
  });
  return waitLine(p, (l) => l === 'ready', 60_000, `${mode} clients ready`).then(() => p);
}

function waitLine(
  p: ClientProcess,
  match: (line: string) => boolean,
  ms: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const i = p.lines.findIndex(match);
      if (i < 0) return false;
      const [line] = p.lines.splice(i, 1);
      clearTimeout(timer);
      p.waiters.delete(check);
      resolve(line!);
      return true;
    };
    const timer = setTimeout(() => {
      p.waiters.delete(check);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    if (!check()) p.waiters.add(check);
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Publishes `rounds` values and returns every client's latency for each. */
async function measure(
  procs: ClientProcess[],
  publish: (v: Value) => Promise<void>,
  firstSeq: number,
  rounds: number,
  waitMs: number,
  gapMs: number,
): Promise<{ latencies: number[]; firsts: number[]; missed: number }> {
  let missed = 0;
  for (let r = 0; r < rounds; r++) {
    const seq = firstSeq + r;
    await publish({ seq, t: now() });
    const results = await Promise.allSettled(
      procs.map((p) => waitLine(p, (l) => l === `got ${seq}`, waitMs, `seq ${seq}`)),
    );
    missed += results.filter((x) => x.status === 'rejected').length;
    await new Promise((res) => setTimeout(res, gapMs));
  }
  const latencies: number[] = [];
  const first = new Map<number, number>();
  for (const p of procs) {
    p.child.stdin!.write('report\n');
    const line = await waitLine(p, (l) => l.startsWith('report '), 10_000, 'report');
    const data = JSON.parse(line.slice(7)) as Record<string, number[]>;
    for (const [k, list] of Object.entries(data)) {
      // Only this measurement's publishes (a poller's first read finds an older value).
      if (Number(k) < firstSeq || Number(k) >= firstSeq + rounds) continue;
      latencies.push(...list);
      first.set(Number(k), Math.min(first.get(Number(k)) ?? Number.POSITIVE_INFINITY, ...list));
    }
  }
  latencies.sort((a, b) => a - b);
  return { latencies, firsts: [...first.values()], missed };
}

async function stopAll(procs: ClientProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null) return resolve();
          const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
          p.child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.child.stdin!.write('exit\n');
        }),
    ),
  );
}

export const benchmark: Benchmark = {
  name: 'config',
  description:
    'config push latency (publish → value held) to 1,000 subscribed clients in 4 processes over SSE, vs the same clients polling every 5 s',
  async run({ runs, quick, progress }) {
    const clients = 1000;
    const processes = 4;
    const perProcess = clients / processes;
    const rounds = quick ? 10 : 30;
    const pollMs = 5000;
    const pollRounds = quick ? 3 : 6;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-bench-config-'));
    const server = await PeakServer.start({ dataDir, port: 0 });
    const token = (await readFile(server.info.adminTokenFile, 'utf8')).trim();
    const url = server.info.url;
    let publishRetries = 0;
    const acks: number[] = [];
    // Under the polling load the control plane's pool can time out a publish: retry it
    // (bounded), timing from the first attempt, so the baseline pays for its own load.
    const publish = async (v: Value) => {
      const until = Date.now() + 20_000;
      for (;;) {
        const res = await fetch(`${url}/api/v1/config/items/${APP}/${ITEM}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ value: JSON.stringify(v), comment: `bench ${v.seq}` }),
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        if (res.status === 200) break;
        if (Date.now() > until) throw new Error(`publish answered ${res.status}: ${text}`);
        publishRetries++;
        await new Promise((r) => setTimeout(r, 50));
      }
      acks.push(now() - v.t);
    };
    const push = {
      p50: [] as number[],
      p99: [] as number[],
      max: [] as number[],
      ack: [] as number[],
      first: [] as number[],
      missed: 0,
    };
    const poll = { p50: [] as number[], p99: [] as number[], missed: 0 };
    let seq = 1;
    let procs: ClientProcess[] = [];
    try {
      await publish({ seq: seq++, t: now() });
      progress(`starting ${clients} push clients in ${processes} processes`);
      procs = await Promise.all(
        Array.from({ length: processes }, () => startClients(url, perProcess, 'push', pollMs)),
      );
      await measure(procs, publish, seq, 3, 5000, 50); // warm-up
      seq += 3;
      for (let r = 0; r < runs; r++) {
        acks.length = 0;
        const m = await measure(procs, publish, seq, rounds, 5000, 100);
        push.ack.push(median(acks));
        push.first.push(median(m.firsts));
        seq += rounds;
        push.p50.push(quantile(m.latencies, 0.5));
        push.p99.push(quantile(m.latencies, 0.99));
        push.max.push(m.latencies.at(-1) ?? Number.NaN);
        push.missed += m.missed;
        progress(
          `push run ${r + 1}: ${m.latencies.length} deliveries, p50 ${quantile(m.latencies, 0.5).toFixed(1)} ms, p99 ${quantile(m.latencies, 0.99).toFixed(1)} ms`,
        );
      }
      await stopAll(procs);
      progress(`starting ${clients} polling clients (every ${pollMs} ms)`);
      procs = await Promise.all(
        Array.from({ length: processes }, () => startClients(url, perProcess, 'poll', pollMs)),
      );
      await new Promise((res) => setTimeout(res, pollMs * 1.5)); // every poller past its first poll
      for (let r = 0; r < runs; r++) {
        const m = await measure(procs, publish, seq, pollRounds, pollMs * 2, 200);
        seq += pollRounds;
        poll.p50.push(quantile(m.latencies, 0.5));
        poll.p99.push(quantile(m.latencies, 0.99));
        poll.missed += m.missed;
        progress(
          `poll run ${r + 1}: ${m.latencies.length} deliveries, p50 ${quantile(m.latencies, 0.5).toFixed(1)} ms, p99 ${quantile(m.latencies, 0.99).toFixed(1)} ms`,
        );
      }
    } finally {
      await stopAll(procs);
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
    const figures = {
      'push.p50Ms': round(median(push.p50)),
      'push.p99Ms': round(median(push.p99)),
      'push.maxMs': round(median(push.max)),
      'push.publishAckMs': round(median(push.ack)),
      'push.firstDeliveryMs': round(median(push.first)),
      'poll5s.p50Ms': round(median(poll.p50)),
      'poll5s.p99Ms': round(median(poll.p99)),
    };
    const ratios = {
      'poll5s/push.p50': round(median(poll.p50) / median(push.p50)),
      'poll5s/push.p99': round(median(poll.p99) / median(push.p99)),
    };
    return {
      figures,
      ratios,
      table: [
        ['contender', 'p50 ms', 'p99 ms', 'missed rounds'],
        ['peakware SSE push', figures['push.p50Ms'], figures['push.p99Ms'], push.missed],
        [
          `polling every ${pollMs} ms`,
          figures['poll5s.p50Ms'],
          figures['poll5s.p99Ms'],
          poll.missed,
        ],
        [],
        ...Object.entries(ratios).map(([k, v]) => [k, v]),
      ],
      notes: [
        `${clients} clients (${processes} processes × ${perProcess}), each its own SSE stream; ${rounds} publishes per push run, ${pollRounds} per poll run; medians over ${runs} runs`,
        'latency = publish request sent → value held by the client (PUT, transaction whose NOTIFY carries the value, LISTEN on the hub, 1,000 SSE writes, client parse)',
        `first client of a round held the value after a median ${figures['push.firstDeliveryMs']} ms (publish → commit → NOTIFY → hub → first socket); the publisher's own PUT response came after ${figures['push.publishAckMs']} ms (it shares its process with the server, which fans out first); ${publishRetries} publish retries (pool timeouts)`,
        'a missed round is a client process that did not see a publish within the wait (5 s push, 2 poll intervals poll)',
      ],
    };
  },
};

if (process.argv[2] === '--clients') {
  await runClients(
    process.argv[3]!,
    Number(process.argv[4]),
    process.argv[5]!,
    Number(process.argv[6]),
  );
}
