/**
 * What the supervisor learns of a process by its pid alone (so it works the same for the
 * instances it started and those it adopted after its own restart): whether it is alive,
 * when it started (to tell a reused pid from the instance), and its CPU time. On Linux
 * these come from `/proc/<pid>/stat`; elsewhere liveness comes from signal 0 and CPU
 * is not measured (a cpu scaling policy then sees no figure and holds).
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc` times (USER_HZ, 100 on every Linux in practice). */
const TICKS_PER_SECOND = 100;

/** Fields of `/proc/<pid>/stat` after the command name. */
function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (a zombie counts as gone). */
export function processAlive(pid: number): boolean {
  const f = statFields(pid);
  if (f !== undefined) return f[0] !== 'Z' && f[0] !== 'X';
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's start time in clock ticks since boot, or undefined off Linux / when gone. */
export function processStartTicks(pid: number): number | undefined {
  const v = statFields(pid)?.[19];
  return v === undefined ? undefined : Number(v);
}

/** User + system CPU time of the process, ms, or undefined off Linux / when gone. */
export function processCpuMs(pid: number): number | undefined {
  const f = statFields(pid);
  if (f === undefined) return undefined;
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_SECOND;
}

/** CPU use between two samples, percent of one core (100 = one core busy). */
export class CpuMeter {
  #last: { cpuMs: number; at: number } | undefined;
  #percent: number | undefined;

  /** Takes a sample at `now` (ms); returns the use since the previous one, if any. */
  sample(pid: number, now: number): number | undefined {
    const cpuMs = processCpuMs(pid);
    if (cpuMs === undefined) return this.#percent;
    const last = this.#last;
    if (last !== undefined && now - last.at >= 200) {
      this.#percent = Math.max(0, ((cpuMs - last.cpuMs) / (now - last.at)) * 100);
      this.#last = { cpuMs, at: now };
    } else if (last === undefined) this.#last = { cpuMs, at: now };
    return this.#percent;
  }
}
