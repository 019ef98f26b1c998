/** Starting and stopping provider processes for the cross-process RPC tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A running provider child process. */
export interface ProviderProcess {
  child: ChildProcess;
  port: number;
  instanceId: string;
  pid: number;
}

/** Spawns `rpc-fixture-provider.js` and waits (bounded) for its ready line. */
export function spawnProvider(
  env: Record<string, string>,
  timeoutMs = 15_000,
): Promise<ProviderProcess> {
  const child = spawn(process.execPath, [path.join(here, 'rpc-fixture-provider.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`provider did not start within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const info = JSON.parse(out.slice(0, nl)) as {
        port: number;
        instanceId: string;
        pid: number;
      };
      resolve({ child, ...info });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`provider exited with ${code} before it was ready: ${stderr}`));
    });
  });
}

/** Sends `signal` and waits (bounded) for the process to exit; returns its exit code. */
export function stopProvider(
  p: ProviderProcess,
  signal: NodeJS.Signals,
  timeoutMs = 15_000,
): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null)
    return Promise.resolve(p.child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      p.child.kill('SIGKILL');
    }, timeoutMs);
    p.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    p.child.kill(signal);
  });
}
