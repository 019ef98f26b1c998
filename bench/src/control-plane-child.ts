/**
 * A control plane (`PeakServer` on its embedded PostgreSQL) in its own process, for the
 * benchmarks that time what a user of `peak server` waits for: the server's CPU is then
 * its own, not shared with the load's event loop. `node control-plane-child.js --serve
 * <dataDir>` prints the port and stops on SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { PeakServer } from 'peakware/server';
import { startChildServer } from './child-server.js';

/** Starts `peak server` on `dataDir` in a child process; resolves with it and its port. */
export function startControlPlaneChild(
  dataDir: string,
): Promise<{ child: ChildProcess; port: number }> {
  return startChildServer(import.meta.url, [dataDir], 'peak');
}

if (process.argv[2] === '--serve') {
  const server = await PeakServer.start({ dataDir: process.argv[3]!, port: 0 });
  process.stdout.write(`${server.info.port}\n`);
  process.once('SIGTERM', () => {
    void server.stop().then(() => process.exit(0));
  });
}
