/** Data loading for pages: one call, optionally repeated, with its error and a reload. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** What {@link useLoad} answers. */
export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Calls `load` now and whenever `deps` change (and every `everyMs` when given), keeping the
 * last answer while the next one is on its way. A call asked for while one is running runs
 * once that one ends (a reload after a change is never lost).
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const busy = useRef(false);
  const again = useRef(false);
  const latest = useRef(load);
  latest.current = load;
  const run = useCallback(async (alive: () => boolean): Promise<void> => {
    if (busy.current) {
      again.current = true;
      return;
    }
    busy.current = true;
    try {
      const value = await latest.current();
      if (alive()) {
        setData(value);
        setError(undefined);
      }
    } catch (err) {
      if (alive()) setError(err);
    } finally {
      busy.current = false;
      if (alive()) setLoading(false);
    }
    if (again.current && alive()) {
      again.current = false;
      await run(alive);
    }
  }, []);
  useEffect(() => {
    let alive = true;
    setLoading(true);
    void run(() => alive);
    const timer = everyMs === undefined ? undefined : setInterval(() => run(() => alive), everyMs);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [...deps, tick, everyMs]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}
