/**
 * Test support: a process's resident memory as Linux reports it in /proc/<pid>/status, for
 * tests that bound how far input can move another process's memory.
 */
import { readFile } from 'node:fs/promises';

/** Resident memory of a process, bytes: now (VmRSS) and its peak so far (VmHWM). */
export interface ProcessMemory {
  rss: number;
  peak: number;
}

/** Reads VmRSS and VmHWM of `pid` (Linux only). */
export async function memoryOf(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => {
    const found = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (found === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(found[1]) * 1024;
  };
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Bytes as whole MiB, for messages. */
export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(0)} MiB`;
}
