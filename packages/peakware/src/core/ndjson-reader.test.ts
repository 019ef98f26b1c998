import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readNdjsonLines } from './ndjson-reader.js';

async function* chunks(...parts: (string | Buffer)[]) {
  for (const p of parts) yield typeof p === 'string' ? Buffer.from(p) : p;
}

async function lines(...parts: (string | Buffer)[]): Promise<string[]> {
  const got: string[] = [];
  for await (const l of readNdjsonLines(chunks(...parts))) got.push(l);
  return got;
}

describe('ndjson reader', () => {
  it('yields each line however the bytes were cut, skipping keep-alive blank lines', async () => {
    const text = '{"id":1}\n\n{"id":2}\r\n\n{"id":"三"}\n';
    const bytes = Buffer.from(text);
    const whole = await lines(bytes);
    assert.deepEqual(whole, ['{"id":1}', '{"id":2}', '{"id":"三"}']);
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.deepEqual(await lines(bytes.subarray(0, cut), bytes.subarray(cut)), whole);
    }
  });

  it('yields a last line that has no newline', async () => {
    assert.deepEqual(await lines('a\nb'), ['a', 'b']);
  });

  it('throws on a line over the limit', async () => {
    await assert.rejects(async () => {
      for await (const _ of readNdjsonLines(chunks('x'.repeat(100)), 10)) void _;
    }, /over 10 bytes/);
  });
});
