/**
 * Under `npx peak server|gateway` (npm exec), a SIGTERM to npm ends npm and its shell but
 * never reaches the peak process, which went on as an orphan. A long-running command calls
 * {@link onParentGone} to treat its parent's going away as that SIGTERM.
 */

/**
 * Calls `stop` once when this process's parent changes (it died and the process was
 * re-parented), checked every 500 ms; only under npm exec (`npm_command=exec`), where the
 * parent is npm's shell. Returns a function that stops watching.
 */
export function onParentGone(stop: () => void, env: NodeJS.ProcessEnv = process.env): () => void {
  if (env.npm_command !== 'exec') return () => undefined;
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    stop();
  }, 500).unref();
  return () => clearInterval(watch);
}
