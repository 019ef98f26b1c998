/**
 * A peer's binary from a Debian package (nginx, wrk, nats-server): found on the usual
 * paths, or installed with apt-get when missing and this runs as root (CI, a fresh
 * container); undefined when it cannot be. apt-get waits up to a minute for the package
 * lock (a test run may be installing its own tools), runs `apt-get update` once if the
 * first try fails, and a failed configure step (a package's own service finding its port
 * taken) still leaves a usable binary, which is all a benchmark needs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function debianTool(
  bin: string,
  pkg: string,
  progress: (m: string) => void,
): string | undefined {
  const find = () =>
    ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin']
      .map((dir) => `${dir}/${bin}`)
      .find((p) => existsSync(p));
  if (find() !== undefined) return find();
  if (process.getuid?.() !== 0) return undefined;
  progress(`installing ${bin} (apt-get install ${pkg})`);
  const apt = (args: string[]) => {
    try {
      execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=60', ...args], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      return true;
    } catch {
      return false;
    }
  };
  const install = ['install', '-y', '--no-install-recommends', pkg];
  if (!apt(install) && find() === undefined) {
    apt(['update']);
    apt(install);
  }
  return find();
}
