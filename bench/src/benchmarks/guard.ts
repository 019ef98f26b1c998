/**
 * Cost per guarded call: `guard.entry()` + `entry.exit()` with one flow rule (QPS, never
 * reached) and one circuit breaker (error ratio) on the resource, against the same trivial
 * work with no guard at all and with a naive token bucket (one bucket, refilled from
 * Date.now(), no statistics, no breaker). The guard does much more per call (second and
 * minute windows, concurrency, breaker counting), so the naive bucket is a floor, not a peer.
 *
 * Peers, each doing its part of the comparable job, promise-based as their APIs are:
 * cockatiel (a circuit breaker with a sampling breaker over a 1 s window), opossum (a
 * circuit breaker with rolling 1 s statistics) and rate-limiter-flexible (an in-memory
 * limiter). They are compared with `await guard.run(...)`, the guard's promise-based call.
 */
import { circuitBreaker, handleAll, SamplingBreaker } from 'cockatiel';
import CircuitBreaker from 'opossum';
import { Guard } from 'peakware/guard';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { type Benchmark, median, round } from '../bench.js';

class NaiveTokenBucket {
  #tokens: number;
  #last = Date.now();
  constructor(readonly perSecond: number) {
    this.#tokens = perSecond;
  }
  tryTake(): boolean {
    const now = Date.now();
    const add = ((now - this.#last) * this.perSecond) / 1000;
    if (add > 0) {
      this.#tokens = Math.min(this.perSecond, this.#tokens + add);
      this.#last = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

let sink = 0;
const work = (i: number) => {
  sink += i & 7;
};

type Loop = (calls: number) => void | Promise<void>;

function bare(): Loop {
  return (calls) => {
    for (let i = 0; i < calls; i++) work(i);
  };
}

function naive(): Loop {
  const bucket = new NaiveTokenBucket(1e12);
  return (calls) => {
    for (let i = 0; i < calls; i++) {
      if (bucket.tryTake()) work(i);
    }
  };
}

function guarded(withRules: boolean): Loop {
  const guard = new Guard(
    withRules
      ? {
          rules: {
            flow: [{ resource: 'bench', count: 1e12 }],
            degrade: [
              {
                resource: 'bench',
                strategy: 'error-ratio',
                threshold: 0.5,
                recoveryTimeoutMs: 1000,
              },
            ],
          },
        }
      : {},
  );
  return (calls) => {
    for (let i = 0; i < calls; i++) {
      const e = guard.entry('bench');
      work(i);
      e.exit();
    }
  };
}

function guardRules() {
  return {
    flow: [{ resource: 'bench', count: 1e12 }],
    degrade: [
      {
        resource: 'bench',
        strategy: 'error-ratio' as const,
        threshold: 0.5,
        recoveryTimeoutMs: 1000,
      },
    ],
  };
}

/** `await guard.run(...)` per call: the guard the way a promise-based peer is used. */
function guardAsync(): Loop {
  const guard = new Guard({ rules: guardRules() });
  return async (calls) => {
    for (let i = 0; i < calls; i++) await guard.run('bench', () => work(i));
  };
}

function cockatielBreaker(): Loop {
  const policy = circuitBreaker(handleAll, {
    halfOpenAfter: 1000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 1000 }),
  });
  return async (calls) => {
    for (let i = 0; i < calls; i++) await policy.execute(() => work(i));
  };
}

const opossumBreakers: CircuitBreaker[] = [];
function opossumBreaker(): Loop {
  const breaker = new CircuitBreaker(async (i: number) => work(i), {
    timeout: false,
    errorThresholdPercentage: 50,
    resetTimeout: 1000,
    rollingCountTimeout: 1000,
    rollingCountBuckets: 2,
  });
  opossumBreakers.push(breaker);
  return async (calls) => {
    for (let i = 0; i < calls; i++) await breaker.fire(i);
  };
}

function rateLimiterFlexible(): Loop {
  const limiter = new RateLimiterMemory({ points: 1e12, duration: 1 });
  return async (calls) => {
    for (let i = 0; i < calls; i++) {
      await limiter.consume('bench');
      work(i);
    }
  };
}

/**
 * The same loop with an `await` between calls: each call then starts a new microtask, so
 * the guard's coarse clock reads the wall clock on every call (what a server sees, where
 * every request is its own task).
 */
function perTask(make: () => Loop): () => Loop {
  return () => {
    const inner = make();
    return async (calls) => {
      for (let i = 0; i < calls; i++) {
        await inner(1);
      }
    };
  };
}

/** Nanoseconds per call over `calls` calls or `maxMs`, whichever ends first. */
async function measure(loop: Loop, calls: number, maxMs: number): Promise<number> {
  const start = process.hrtime.bigint();
  const limit = BigInt(maxMs) * 1_000_000n;
  let done = 0;
  while (done < calls) {
    await loop(10_000);
    done += 10_000;
    if (process.hrtime.bigint() - start > limit) break;
  }
  return Number(process.hrtime.bigint() - start) / done;
}

export const benchmark: Benchmark = {
  name: 'guard',
  description:
    'guard.entry + exit (one flow rule, one breaker) ns/call vs no guard and a naive token bucket',
  async run({ runs, quick, progress }) {
    const calls = quick ? 500_000 : 3_000_000;
    const maxMs = quick ? 1000 : 3000;
    const makers: [string, () => Loop][] = [
      ['no guard', bare],
      ['naive token bucket', naive],
      ['peakware guard, no rules', () => guarded(false)],
      ['peakware guard, flow + breaker', () => guarded(true)],
      ['no guard, one call per task', perTask(bare)],
      ['naive token bucket, one call per task', perTask(naive)],
      ['peakware guard, flow + breaker, one call per task', perTask(() => guarded(true))],
      ['peakware guard.run (await), flow + breaker', guardAsync],
      ['cockatiel circuit breaker (await)', cockatielBreaker],
      ['opossum circuit breaker (await)', opossumBreaker],
      ['rate-limiter-flexible memory (await)', rateLimiterFlexible],
    ];
    const results = new Map<string, number[]>(makers.map(([name]) => [name, []]));
    for (const [, make] of makers) await measure(make(), calls / 5, maxMs); // warm-up
    for (let r = 0; r < runs; r++) {
      progress(`run ${r + 1}/${runs}`);
      const order = r % 2 === 0 ? makers : [...makers].reverse();
      for (const [name, make] of order)
        results.get(name)!.push(await measure(make(), calls, maxMs));
    }
    for (const b of opossumBreakers) b.shutdown();
    if (sink === -1) throw new Error('unreachable');
    const med = (name: string) => median(results.get(name)!);
    const g = med('peakware guard, flow + breaker');
    const g0 = med('peakware guard, no rules');
    const n = med('naive token bucket');
    const b = med('no guard');
    const gt = med('peakware guard, flow + breaker, one call per task');
    const nt = med('naive token bucket, one call per task');
    const bt = med('no guard, one call per task');
    const ga = med('peakware guard.run (await), flow + breaker');
    const peers = {
      cockatiel: med('cockatiel circuit breaker (await)'),
      opossum: med('opossum circuit breaker (await)'),
      'rate-limiter-flexible': med('rate-limiter-flexible memory (await)'),
    };
    const fastestPeer = Math.min(...Object.values(peers));
    return {
      figures: {
        'guard.flowBreaker.nsPerCall': round(g),
        'guard.noRules.nsPerCall': round(g0),
        'naiveBucket.nsPerCall': round(n),
        'noGuard.nsPerCall': round(b),
        'guard.flowBreaker.overheadNs': round(g - b),
        'guard.flowBreaker.perTask.overheadNs': round(gt - bt),
        'naiveBucket.perTask.overheadNs': round(nt - bt),
        'guard.run.await.nsPerCall': round(ga),
        'cockatiel.nsPerCall': round(peers.cockatiel),
        'opossum.nsPerCall': round(peers.opossum),
        'rateLimiterFlexible.nsPerCall': round(peers['rate-limiter-flexible']),
      },
      ratios: {
        'guard/naiveBucket.nsPerCall': round(g / n),
        'guard/noGuard.nsPerCall': round(g / b),
        'guardNoRules/naiveBucket.nsPerCall': round(g0 / n),
        'guard/naiveBucket.perTask.overheadNs': round((gt - bt) / (nt - bt)),
        'cockatiel/guard.nsPerCall': round(peers.cockatiel / ga),
        'opossum/guard.nsPerCall': round(peers.opossum / ga),
        'rateLimiterFlexible/guard.nsPerCall': round(peers['rate-limiter-flexible'] / ga),
        'fastestPeer/guard.nsPerCall': round(fastestPeer / ga),
      },
      table: [
        ['implementation', 'ns/call (median)', 'min', 'max'],
        ...makers.map(([name]) => {
          const xs = results.get(name)!;
          return [name, round(median(xs)), round(Math.min(...xs)), round(Math.max(...xs))];
        }),
      ],
      notes: [
        `Up to ${calls} calls or ${maxMs / 1000} s per run, synchronous entry/exit around trivial work; medians of ${runs} runs.`,
        'The guard records pass and completion into a 1 s and a 60 s window per resource, tracks concurrency, runs the slot chain and feeds the breaker; the naive bucket does none of that.',
        'One call per task: an await between calls (as on a server, one request per task); overhead = that row minus the no-guard row. The guard reads its clock from a ticker thread (about 1 ms resolution); the naive bucket calls Date.now() on every call.',
        'Aim from the issue: <= 300 ns per call. Sentinel (Java, JMH) is about 840 ns per call.',
        'Peers are promise-based, so they are compared with `await guard.run(...)` in the same loop shape (one await per call); a peer/guard ratio above 1 means the guard is faster. Each peer does only part of the job (a breaker, or a limiter); the guard does both plus statistics.',
      ],
    };
  },
};
