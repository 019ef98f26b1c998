/**
 * A live chart's data: the last N seconds of one metrics history query, kept by asking every
 * second for the seconds since a little before the last point (late pushes correct the
 * newest seconds) instead of the whole window again.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MetricsHistoryQuery, MetricsSeries } from '../console-views.js';
import { api } from './api.js';

/** The points a live chart draws. */
export interface LivePoints {
  t: number[];
  calls: number[];
  errors: number[];
  blocked: number[];
  p99: (number | null)[];
  rtAvg: (number | null)[];
  instances: number[];
}

const EMPTY: LivePoints = {
  t: [],
  calls: [],
  errors: [],
  blocked: [],
  p99: [],
  rtAvg: [],
  instances: [],
};

/** Sums a page's series into one (for `by: 'total'` there is one already). */
export function sumSeries(series: readonly MetricsSeries[]): LivePoints {
  const first = series[0];
  if (first === undefined) return EMPTY;
  const n = first.t.length;
  const out: LivePoints = {
    t: first.t,
    calls: new Array(n).fill(0),
    errors: new Array(n).fill(0),
    blocked: new Array(n).fill(0),
    p99: new Array(n).fill(null),
    rtAvg: new Array(n).fill(null),
    instances: new Array(n).fill(0),
  };
  for (let i = 0; i < n; i++) {
    let rtSum = 0;
    for (const s of series) {
      out.calls[i]! += s.calls[i]!;
      out.errors[i]! += s.errors[i]!;
      out.blocked[i]! += s.blocked[i]!;
      out.instances[i]! += s.instances[i]!;
      const p = s.p99Ms[i];
      if (p !== null && p !== undefined) out.p99[i] = Math.max(out.p99[i] ?? 0, p);
      const rt = s.rtAvgMs[i];
      if (rt !== null && rt !== undefined) rtSum += rt * s.calls[i]!;
    }
    out.rtAvg[i] = out.calls[i]! > 0 ? rtSum / out.calls[i]! : null;
  }
  return out;
}

function trimTo(p: LivePoints, n: number): LivePoints {
  return {
    t: p.t.slice(0, n),
    calls: p.calls.slice(0, n),
    errors: p.errors.slice(0, n),
    blocked: p.blocked.slice(0, n),
    p99: p.p99.slice(0, n),
    rtAvg: p.rtAvg.slice(0, n),
    instances: p.instances.slice(0, n),
  };
}

/** A series of seconds with no calls (nothing pushed in them). */
function emptySeries(fromMs: number, toMs: number): MetricsSeries {
  const n = Math.max(0, Math.round((toMs - fromMs) / 1000));
  return {
    service: '',
    resource: '',
    t: Array.from({ length: n }, (_, i) => fromMs + i * 1000),
    calls: new Array(n).fill(0),
    errors: new Array(n).fill(0),
    blocked: new Array(n).fill(0),
    rtAvgMs: new Array(n).fill(null),
    p99Ms: new Array(n).fill(null),
    instances: new Array(n).fill(0),
  };
}

function merge(old: LivePoints, add: LivePoints, keep: number): LivePoints {
  const from = add.t[0];
  const cut = from === undefined ? old.t.length : old.t.findIndex((t) => t >= from);
  const at = cut < 0 ? old.t.length : cut;
  const join = <T>(a: T[], b: T[]) => [...a.slice(0, at), ...b].slice(-keep);
  return {
    t: join(old.t, add.t),
    calls: join(old.calls, add.calls),
    errors: join(old.errors, add.errors),
    blocked: join(old.blocked, add.blocked),
    p99: join(old.p99, add.p99),
    rtAvg: join(old.rtAvg, add.rtAvg),
    instances: join(old.instances, add.instances),
  };
}

/**
 * The last `seconds` of a query, per second, updated every second; or, with `rangeMs`
 * beyond the live window, the whole range once (the server picks 1 s, 1 min or 1 h).
 */
export function useLiveSeries(
  query: Omit<MetricsHistoryQuery, 'from' | 'to' | 'step'>,
  seconds: number,
  rangeMs?: number,
): { points: LivePoints; error: unknown; updates: number; stepSeconds: number } {
  const [points, setPoints] = useState<LivePoints>(EMPTY);
  const [error, setError] = useState<unknown>(undefined);
  const [updates, setUpdates] = useState(0);
  const [stepSeconds, setStep] = useState(1);
  const last = useRef<LivePoints>(EMPTY);
  const key = JSON.stringify([query, seconds, rangeMs]);
  useEffect(() => {
    let alive = true;
    last.current = EMPTY;
    setPoints(EMPTY);
    if (rangeMs !== undefined && rangeMs > seconds * 1000) {
      api.console
        .metrics({ ...query, from: Date.now() - rangeMs })
        .then((h) => {
          if (!alive) return;
          setStep(h.stepSeconds);
          setPoints(sumSeries(h.series));
          setUpdates((u) => u + 1);
        })
        .catch((err) => alive && setError(err));
      return () => {
        alive = false;
      };
    }
    setStep(1);
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        const lastT = last.current.t.at(-1);
        const from = lastT === undefined ? Date.now() - seconds * 1000 : lastT - 10_000;
        const h = await api.console.metrics({ ...query, from, step: 1 });
        if (!alive) return;
        const add = sumSeries(h.series.length === 0 ? [emptySeries(h.fromMs, h.toMs)] : h.series);
        // Seconds nobody has pushed yet at the end are still on their way: leave them for
        // the next read rather than draw a drop to zero.
        let keep = add.t.length;
        while (keep > Math.max(0, add.t.length - 3) && add.instances[keep - 1] === 0) keep--;
        const trimmed = trimTo(add, keep);
        last.current = merge(last.current, trimmed, seconds);
        setPoints(last.current);
        setError(undefined);
        setUpdates((u) => u + 1);
      } catch (err) {
        if (alive) setError(err);
      } finally {
        busy = false;
      }
    };
    void tick();
    const timer = setInterval(tick, 1000);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [key]);
  return { points, error, updates, stepSeconds };
}
