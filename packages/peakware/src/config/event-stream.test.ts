import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { readEventStream } from './event-stream.js';

describe('readEventStream', () => {
  let server: http.Server;
  let url: string;

  before(async () => {
    server = http.createServer((req, res) => {
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/event-stream' });
      if (req.url === '/silent') return; // headers, then nothing
      if (req.url === '/missing') {
        res.end();
        return;
      }
      // One event split across writes, a comment, a second event, then the end.
      res.write('event: entry\ndata: {"a"');
      setTimeout(() => {
        res.write(':1}\n\n: keepalive\n\nevent: snapshot\ndata: [2]\n\n');
        res.end();
      }, 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('joins events split across chunks and skips comments', async () => {
    const events: [string, string][] = [];
    await readEventStream(`${url}/ok`, new AbortController().signal, (e, d) => events.push([e, d]));
    assert.deepEqual(events, [
      ['entry', '{"a":1}'],
      ['snapshot', '[2]'],
    ]);
  });

  it('treats a silent stream as dead after the idle bound', async () => {
    await assert.rejects(
      readEventStream(`${url}/silent`, new AbortController().signal, () => undefined, 200),
      /silent for 200 ms/,
    );
  });

  it('rejects a status other than 200', async () => {
    await assert.rejects(
      readEventStream(`${url}/missing`, new AbortController().signal, () => undefined),
      /HTTP 404/,
    );
  });
});
