/**
 * Test support: the processes under a pid (Linux /proc), whether a pid still runs, and a
 * request held open against an HTTP server (so a graceful stop has work in flight).
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';

/** One process under a root: its pid and command line. */
export interface TreeProcess {
  pid: number;
  cmd: string;
}

/** Every live process under `root` (Linux /proc), with its command line. */
export async function descendants(root: number): Promise<TreeProcess[]> {
  const parents = new Map<number, number[]>();
  const cmds = new Map<number, string>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[1] === undefined) continue;
    const ppid = Number(fields[1]);
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)]);
    cmds.set(
      Number(name),
      (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' '),
    );
  }
  const out: TreeProcess[] = [];
  const walk = (pid: number) => {
    for (const c of parents.get(pid) ?? []) {
      out.push({ pid: c, cmd: cmds.get(c) ?? '' });
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** True while `pid` runs (a zombie waiting for its parent counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  let stat = '';
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/**
 * Opens a POST to `url` whose body never finishes: an HTTP request in flight until the
 * socket is destroyed, which a graceful stop waits for (up to its bound).
 */
export async function holdRequest(url: string): Promise<net.Socket> {
  const { hostname, port, pathname } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.write(
    `POST ${pathname} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"a":`,
  );
  // A request sent after it on another connection and answered: by then the server has
  // read the held request's head (a request not yet read would count as an idle socket).
  await fetch(new URL('/health', url));
  return socket;
}
