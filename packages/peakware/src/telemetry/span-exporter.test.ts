import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '../../test/support/wait.js';
import { BatchSpanProcessor, type SpanExporter } from './span-exporter.js';
import type { SpanRecord } from './span-types.js';

function span(i: number): SpanRecord {
  return {
    traceId: 'a'.repeat(32),
    spanId: i.toString(16).padStart(16, '0'),
    name: `s${i}`,
    kind: 'internal',
    service: 'svc',
    startUs: 1,
    durationUs: 1,
    error: false,
    stress: false,
    attributes: {},
  };
}

describe('BatchSpanProcessor', () => {
  it('sends batches of at most maxBatchSize, in order', async () => {
    const batches: string[][] = [];
    const exporter: SpanExporter = {
      export: async (spans) => {
        batches.push(spans.map((s) => s.name));
      },
    };
    const p = new BatchSpanProcessor({
      exporter,
      maxBatchSize: 4,
      maxQueueSize: 100,
      flushIntervalMs: 10_000,
    });
    for (let i = 0; i < 10; i++) p.add(span(i));
    await p.flush();
    assert.deepEqual(
      batches.map((b) => b.length),
      [4, 4, 2],
    );
    assert.deepEqual(
      batches.flat(),
      Array.from({ length: 10 }, (_, i) => `s${i}`),
    );
    assert.deepEqual(p.stats(), {
      queued: 10,
      droppedFull: 0,
      droppedExport: 0,
      exported: 10,
      pending: 0,
    });
  });

  it('flushes by time when a batch does not fill', async () => {
    let got = 0;
    const p = new BatchSpanProcessor({
      exporter: {
        export: async (s) => {
          got += s.length;
        },
      },
      flushIntervalMs: 20,
    });
    p.add(span(1));
    await waitFor('the timer to flush the span', () => got > 0);
    assert.equal(got, 1);
  });

  it('drops and counts when the queue is full while an export hangs; add never waits', async () => {
    let release: () => void = () => {};
    const hung = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    const p = new BatchSpanProcessor({
      exporter: {
        export: () => {
          calls++;
          return hung;
        },
      },
      maxQueueSize: 50,
      maxBatchSize: 10,
      flushIntervalMs: 1,
    });
    for (let i = 0; i < 10; i++) p.add(span(i));
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1, 'the first batch is out and hangs');
    for (let i = 0; i < 1000; i++) p.add(span(i));
    const s = p.stats();
    assert.equal(s.pending, 50);
    assert.equal(s.droppedFull, 950);
    release();
    await p.flush();
    assert.equal(p.stats().exported, 60);
  });

  it('counts spans of failed exports as dropped and keeps going', async () => {
    let fail = true;
    const p = new BatchSpanProcessor({
      exporter: {
        export: async () => {
          if (fail) throw new Error('collector down');
        },
      },
      maxBatchSize: 5,
    });
    for (let i = 0; i < 5; i++) p.add(span(i));
    await p.flush();
    fail = false;
    for (let i = 0; i < 3; i++) p.add(span(i));
    await p.shutdown();
    assert.deepEqual(p.stats(), {
      queued: 8,
      droppedFull: 0,
      droppedExport: 5,
      exported: 3,
      pending: 0,
    });
    p.add(span(9));
    assert.equal(p.stats().droppedFull, 1, 'spans after shutdown are dropped');
  });
});
