/**
 * A closed-loop HTTP load from wrk (the Debian package; C, one event-loop thread), for
 * benchmarks whose contenders are cheap enough that a Node load process would take as much
 * of the machine's CPU as they do. Requests are either one fixed request or a list of raw
 * HTTP/1.1 requests sent in turn (each signed request once: a gateway refuses a replayed
 * nonce), written to a file a Lua script reads. The figure includes wrk's own CPU a request
 * (read as the benchmark process's reaped children's time, /proc/self/stat, so it includes
 * reading the request file before the window).
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One request, as a load sends it. */
export interface WrkRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What one wrk run measured. */
export interface WrkResult {
  perSec: number;
  p50: number;
  p99: number;
  /** Answers other than 2xx/3xx, and socket errors. */
  errors: number;
  /** wrk's CPU per request, µs. */
  loadUs: number;
  requests: number;
}

const LIST_SCRIPT = `
local reqs = {}
local i = 0
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while true do
    local s = string.find(data, "\\1", pos, true)
    if not s then break end
    reqs[#reqs + 1] = string.sub(data, pos, s - 1)
    pos = s + 1
  end
end
-- After the last request the list starts over; a gateway refuses the replayed nonces,
-- which the run reports as errors (sign more).
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
`;

/** A raw HTTP/1.1 request (keep-alive) for `host`. */
export function rawRequest(host: string, r: WrkRequest): string {
  const headers = Object.entries({
    host,
    ...r.headers,
    'content-length': String(Buffer.byteLength(r.body)),
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `${r.method} ${r.path} HTTP/1.1\r\n${headers}\r\n${r.body}`;
}

/** Reaped children's CPU of this process so far, µs (cutime + cstime). */
function childrenCpuUs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1_000_000) / 100;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

/**
 * Runs wrk against `url` with `connections` in flight for `durationMs`, sending `requests`
 * in turn (a list) or one fixed request. `dir` holds the script and the request file.
 */
export async function runWrk(opts: {
  wrk: string;
  url: string;
  connections: number;
  durationMs: number;
  requests: WrkRequest | readonly WrkRequest[];
  dir: string;
}): Promise<WrkResult> {
  const { host } = new URL(opts.url);
  const script = path.join(opts.dir, 'wrk-list.lua');
  const file = path.join(opts.dir, 'wrk-requests.bin');
  const list = Array.isArray(opts.requests)
    ? (opts.requests as readonly WrkRequest[])
    : [opts.requests as WrkRequest];
  writeFileSync(script, LIST_SCRIPT);
  writeFileSync(file, `${list.map((r) => rawRequest(host, r)).join('\u0001')}\u0001`);
  const cpu0 = childrenCpuUs();
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      opts.wrk,
      [
        '-t1',
        `-c${opts.connections}`,
        `-d${Math.max(1, Math.round(opts.durationMs / 1000))}s`,
        '--latency',
        '-s',
        script,
        opts.url,
        '--',
        file,
      ],
      { maxBuffer: 1 << 20 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`wrk: ${err.message} ${stderr}`)) : resolve(stdout),
    );
  });
  const cpuUs = childrenCpuUs() - cpu0;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (m === null) throw new Error(`wrk: no ${p}% latency in its output:\n${out}`);
    return toMs(m[1]!, m[2]!);
  };
  const requests = num(/(\d+) requests in/);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((n, v) => n + Number(v), 0);
  return {
    perSec: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct('50'),
    p99: pct('99'),
    errors: num(/Non-2xx or 3xx responses: (\d+)/) + socketErrors,
    loadUs: requests > 0 ? cpuUs / requests : Number.NaN,
    requests,
  };
}
