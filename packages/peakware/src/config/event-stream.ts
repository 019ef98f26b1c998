/**
 * A minimal Server-Sent-Events reader on `node:http`: the config client's watch stream.
 * Chosen over `fetch` because an instance may hold its stream for days and a benchmark
 * holds a thousand per process: plain `data` events cost a fraction of a web-stream read.
 */
import http from 'node:http';
import https from 'node:https';

/** Largest event accepted before the stream is treated as broken, bytes. */
const MAX_EVENT_BYTES = 16 * 1024 * 1024;

/**
 * Silence after which a stream is treated as dead, ms: the server sends a keepalive comment
 * every 15 s, so three missed ones mean a half-open connection (a peer gone without a FIN).
 */
export const STREAM_IDLE_MS = 45_000;

/**
 * Opens `url` and calls `onEvent(event, data)` per SSE event. Resolves when the stream ends
 * (or `signal` aborts); rejects on a connection error, a status other than 200, or
 * `idleMs` without a byte.
 */
export function readEventStream(
  url: string,
  signal: AbortSignal,
  onEvent: (event: string, data: string) => void,
  idleMs = STREAM_IDLE_MS,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { headers: { accept: 'text/event-stream' }, signal }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`watch answered HTTP ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (data.length > 0) {
            try {
              onEvent(event, data);
            } catch (err) {
              res.destroy(err as Error);
              return;
            }
          }
        }
        if (buffer.length > MAX_EVENT_BYTES)
          res.destroy(new Error('watch stream sent an oversized event'));
      });
      res.on('end', () => resolve());
      res.on('close', () => resolve());
      res.on('error', reject);
    });
    // Covers both a server that never answers and a stream gone quiet.
    req.setTimeout(idleMs, () => {
      req.destroy(new Error(`watch stream silent for ${idleMs} ms; reconnecting`));
    });
    req.on('error', reject);
  });
}
