/**
 * What benchmarks with a server in its own process share: start the benchmark's own module
 * as a child (`<module> --serve ...`), wait for the port it prints on its first line, and
 * read a process's CPU time, so the cost on both sides of a call can be counted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Node flags for a benchmark's child processes: with `PEAK_BENCH_PROFILE=<folder>` each
 * child writes a V8 CPU profile there when it exits (`--cpu-prof`; open it in Chrome's
 * DevTools), to see where a contender's time goes. None otherwise.
 */
export function childNodeArgs(): string[] {
  const dir = process.env.PEAK_BENCH_PROFILE;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

/**
 * Runs `node <moduleUrl> --serve <args...>` and resolves with the child and the port it
 * prints as its first stdout line; rejects if it exits first or takes over 20 s.
 */
export function startChildServer(
  moduleUrl: string,
  args: string[],
  label: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [...childNodeArgs(), fileURLToPath(moduleUrl), '--serve', ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label} server did not start in 20 s`)),
      20_000,
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve({ child, port: Number(out.slice(0, nl)) });
    });
    child.once('exit', (code) => reject(new Error(`${label} server exited with ${code}`)));
  });
}

/** CPU time (user + system) a process has used so far, µs, from /proc (Linux); NaN elsewhere. */
export function processCpuUs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The fields of /proc/<pid>/stat after the command name; undefined when it is gone. */
export function procStat(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The postmaster of a PostgreSQL backend (its parent), NaN off Linux. */
export function postmasterOf(backendPid: number): number {
  return Number(procStat(backendPid)?.[1] ?? Number.NaN);
}

/**
 * CPU time of a whole PostgreSQL instance, µs: its postmaster, every process it runs, and
 * the ones that ended (the postmaster's children's times); NaN off Linux. Ticks of 10 ms.
 */
export function postgresCpuUs(postmaster: number): number {
  const own = procStat(postmaster);
  if (own === undefined) return Number.NaN;
  // utime, stime, cutime, cstime (fields 14-17), in clock ticks of 10 ms.
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = procStat(entry);
    if (f !== undefined && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks * 10_000;
}
