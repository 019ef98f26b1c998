import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSseEvents, type SseEvent } from './sse-reader.js';

async function* chunks(...parts: (string | Buffer)[]) {
  for (const p of parts) yield typeof p === 'string' ? Buffer.from(p) : p;
}

async function read(...parts: (string | Buffer)[]): Promise<SseEvent[]> {
  const got: SseEvent[] = [];
  await readSseEvents(chunks(...parts), (e) => got.push(e));
  return got;
}

describe('sse reader', () => {
  it('reads events split across chunks at any byte', async () => {
    const text = 'event: snapshot\ndata: {"a":1}\n\n: keepalive\n\nevent: entry\ndata: {"b":2}\n\n';
    const whole = await read(text);
    for (let cut = 1; cut < text.length; cut++) {
      assert.deepEqual(await read(text.slice(0, cut), text.slice(cut)), whole, `cut at ${cut}`);
    }
    assert.deepEqual(whole, [
      { event: 'snapshot', data: '{"a":1}' },
      { event: 'entry', data: '{"b":2}' },
    ]);
  });

  it('joins multi-line data with newlines and strips one leading space only', async () => {
    assert.deepEqual(await read('data: first\ndata:  second\ndata:third\n\n'), [
      { event: 'message', data: 'first\n second\nthird' },
    ]);
  });

  it('accepts CRLF and CR line ends, and keeps the id', async () => {
    const got = await read(
      'id: 7\r\nevent: x\r\ndata: 1\r\n\r\n',
      'event: y\rdata: 2\r\rdata: 3\n\n',
    );
    assert.deepEqual(
      got.map((e) => [e.event, e.data]),
      [
        ['x', '1'],
        ['y', '2'],
        ['message', '3'],
      ],
    );
    assert.equal(got[0]!.id, '7');
  });

  it('decodes a UTF-8 character split across chunks', async () => {
    const bytes = Buffer.from('data: 价格\n\n');
    const got = await read(bytes.subarray(0, 8), bytes.subarray(8));
    assert.deepEqual(got, [{ event: 'message', data: '价格' }]);
  });

  it('an event without data is not dispatched; comments are skipped', async () => {
    assert.deepEqual(await read(': hello\n\nevent: empty\n\n'), []);
  });

  it('rejects when the handler throws, and on an oversized event', async () => {
    await assert.rejects(
      readSseEvents(chunks('data: x\n\n'), () => {
        throw new Error('bad event');
      }),
      /bad event/,
    );
    await assert.rejects(
      readSseEvents(chunks(`data: ${'x'.repeat(200)}`), () => undefined, 64),
      /over 64 bytes/,
    );
  });
});
