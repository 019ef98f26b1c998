/**
 * Open-model load on the gateway, in a process of its own so it does not share an event
 * loop with the control plane: `node load-process.js` reads one JSON {@link LoadStep} per
 * line on stdin and, for each, sends buys at a constant arrival rate for a fixed time,
 * whatever the chain's answers (a closed loop would slow down with the chain and hide a
 * stall), measures each buy's latency from the time it was scheduled, not sent, and prints
 * one JSON {@link LoadResult} line. One process and one pool of keep-alive connections
 * serve every step, as a load tool runs a whole test: a new process per step measured its
 * own start (cold code, a burst of new connections) in each step's first half second.
 * Buys go through `peakware/stress`'s HTTP client (`HttpPool`), not node:http.
 * It exits when stdin ends.
 */
import { createInterface } from 'node:readline';
import { LatencyHistogram } from 'peakware/core';
import { HttpPool } from 'peakware/stress';

/** One step of load. */
export interface LoadStep {
  gatewayUrl: string;
  /** The buyers' API key at the gateway (`x-peak-api-key`). */
  apiKey: string;
  /** Buys per second. */
  rate: number;
  seconds: number;
  hotSku: string;
  regularSku: string;
  /** Share of buys for the regular item (0..1). */
  regularShare: number;
  /** Buyer ids are userBase + 1, +2, ...: distinct across steps, spread over the shards. */
  userBase: number;
  /** A buy unanswered this long counts as an error (ms). */
  timeoutMs: number;
}

/** What a step saw. */
export interface LoadResult {
  rate: number;
  seconds: number;
  scheduled: number;
  placed: number;
  soldOut: number;
  blocked: number;
  errors: number;
  /** Latency from the scheduled send time, ms. */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /**
   * Each second of the step (by scheduled send time): p99 and worst latency, ms. Shows
   * whether a failed p99 was one stall or the whole step.
   */
  bySecond: { p99: number; max: number }[];
  /** When the step's first buy was scheduled (epoch ms), to line it up with other samples. */
  startedAt: number;
  /** How late the generator itself was in sending (its own lag), ms, worst case. */
  senderLagMs: number;
  /** CPU the generator used, µs per buy (not part of the chain's figures). */
  cpuUsPerBuy: number;
  errorSamples: string[];
}

/** Keep-alive connections kept across steps, one pool per gateway (and per buy timeout). */
const pools = new Map<string, HttpPool>();
function poolFor(step: LoadStep): HttpPool {
  const key = `${step.gatewayUrl} ${step.timeoutMs}`;
  let pool = pools.get(key);
  if (pool === undefined) {
    // peakware/stress's generator client: a buy costs the generator a fraction of what
    // node:http spends, CPU the chain under test would otherwise share with it on one machine.
    pool = new HttpPool({ url: step.gatewayUrl, maxConnections: 4096, timeoutMs: step.timeoutMs });
    pools.set(key, pool);
  }
  return pool;
}

async function runStep(step: LoadStep): Promise<LoadResult> {
  const pool = poolFor(step);
  const headers = { 'content-type': 'application/json', 'x-peak-api-key': step.apiKey };
  const latency = new LatencyHistogram();
  const result: LoadResult = {
    rate: step.rate,
    seconds: step.seconds,
    scheduled: Math.round(step.rate * step.seconds),
    placed: 0,
    soldOut: 0,
    blocked: 0,
    errors: 0,
    latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 },
    bySecond: [],
    startedAt: 0,
    senderLagMs: 0,
    cpuUsPerBuy: 0,
    errorSamples: [],
  };
  const fail = (why: string) => {
    result.errors++;
    if (result.errorSamples.length < 5) result.errorSamples.push(why);
  };
  const cpu = process.cpuUsage();
  const perSecond = Array.from({ length: Math.ceil(step.seconds) }, () => ({
    latency: new LatencyHistogram(),
    max: 0,
  }));
  let answered = 0;
  let maxMs = 0;
  const buy = async (i: number, scheduledAt: number): Promise<void> => {
    const regular = Math.floor((i + 1) * step.regularShare) > Math.floor(i * step.regularShare);
    const body = `{"userId":${step.userBase + i + 1},"sku":${JSON.stringify(regular ? step.regularSku : step.hotSku)},"qty":1}`;
    let outcome: () => void;
    try {
      const res = await pool.request({ method: 'POST', path: '/api/buy', headers, body });
      if (res.status === 200) outcome = () => result.placed++;
      else if (res.status === 409) outcome = () => result.soldOut++;
      else if (res.status === 429) outcome = () => result.blocked++;
      else outcome = () => fail(`${res.status} ${res.body.toString().slice(0, 200)}`);
    } catch (err) {
      outcome = () => fail(String(err));
    }
    const ms = performance.now() - scheduledAt;
    latency.record(ms);
    if (ms > maxMs) maxMs = ms;
    const second = perSecond[Math.min(perSecond.length - 1, Math.floor((i * interval) / 1000))];
    if (second !== undefined) {
      second.latency.record(ms);
      if (ms > second.max) second.max = ms;
    }
    outcome();
    answered++;
  };

  const interval = 1000 / step.rate;
  const start = performance.now();
  result.startedAt = Date.now();
  const pending: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    let sent = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < result.scheduled && start + sent * interval <= now) {
        const scheduledAt = start + sent * interval;
        result.senderLagMs = Math.max(result.senderLagMs, now - scheduledAt);
        pending.push(buy(sent, scheduledAt));
        sent++;
      }
      if (sent < result.scheduled) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(pending);
  const used = process.cpuUsage(cpu);
  result.latencyMs = {
    p50: round(latency.quantile(0.5)),
    p90: round(latency.quantile(0.9)),
    p99: round(latency.quantile(0.99)),
    max: round(maxMs),
  };
  result.bySecond = perSecond.map((s) => ({
    p99: round(s.latency.quantile(0.99)),
    max: round(s.max),
  }));
  result.senderLagMs = round(result.senderLagMs);
  result.cpuUsPerBuy = Math.round((used.user + used.system) / Math.max(1, answered));
  return result;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

// The shop's main process is gone (stopped by a signal mid-step): do not outlive it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 500).unref();

// One step at a time: the lines are read in order and each runs to its end.
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const result = await runStep(JSON.parse(line) as LoadStep);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
for (const pool of pools.values()) pool.close();
