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
  // The alive check of the newest effect: a call asked for by an effect whose deps changed
  // while an older call ran must still run after it, though the older effect is gone.
  const newestAlive = useRef<() => boolean>(() => true);
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
    if (again.current && newestAlive.current()) {
      again.current = false;
      await run(newestAlive.current);
    }
  }, []);
  useEffect(() => {
    let alive = true;
    const isAlive = () => alive;
    newestAlive.current = isAlive;
    setLoading(true);
    void run(isAlive);
    const timer = everyMs === undefined ? undefined : setInterval(() => run(isAlive), everyMs);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [...deps, tick, everyMs]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}
