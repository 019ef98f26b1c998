import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  assertDeadline,
  bindContext,
  childContext,
  createContext,
  currentContext,
  deriveContext,
  remainingTime,
  runWithContext,
  withContext,
} from './context.js';
import { isPeakError } from './errors.js';

describe('call context', () => {
  it('is undefined outside a unit of work', () => {
    assert.equal(currentContext(), undefined);
  });

  it('creates valid W3C ids', () => {
    const ctx = createContext();
    assert.match(ctx.traceId, /^[0-9a-f]{32}$/);
    assert.match(ctx.spanId, /^[0-9a-f]{16}$/);
    assert.notEqual(createContext().traceId, ctx.traceId);
    assert.ok(Object.isFrozen(ctx));
  });

  it('survives await and timers', async () => {
    const ctx = createContext({ callerApp: 'cart' });
    await runWithContext(ctx, async () => {
      await sleep(5);
      assert.equal(currentContext(), ctx);
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          assert.equal(currentContext(), ctx);
          resolve();
        }, 1),
      );
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          assert.equal(currentContext(), ctx);
          resolve();
        }),
      );
      await new Promise<void>((resolve) =>
        process.nextTick(() => {
          assert.equal(currentContext(), ctx);
          resolve();
        }),
      );
      await new Promise<void>((resolve) => {
        let n = 0;
        const timer = setInterval(() => {
          assert.equal(currentContext(), ctx);
          if (++n === 3) {
            clearInterval(timer);
            resolve();
          }
        }, 1);
      });
      queueMicrotask(() => assert.equal(currentContext(), ctx));
    });
    assert.equal(currentContext(), undefined);
  });

  it('reaches event emitter listeners, sync and from a timer', async () => {
    const emitter = new EventEmitter();
    const seen: (string | undefined)[] = [];
    emitter.on('tick', () => seen.push(currentContext()?.callerApp));
    withContext({ callerApp: 'order' }, () => emitter.emit('tick'));
    await withContext({ callerApp: 'payment' }, async () => {
      setTimeout(() => emitter.emit('tick'), 2);
      await once(emitter, 'tick');
    });
    assert.deepEqual(seen, ['order', 'payment']);
  });

  it('keeps Promise.all branches apart', async () => {
    const results = await withContext({ callerApp: 'gateway' }, () =>
      Promise.all(
        ['inventory', 'coupon', 'promotion'].map((svc, i) =>
          withContext({ tags: { svc } }, async () => {
            await sleep(10 - i * 3);
            const ctx = currentContext()!;
            return `${ctx.callerApp}:${ctx.tags.svc}`;
          }),
        ),
      ),
    );
    assert.deepEqual(results, ['gateway:inventory', 'gateway:coupon', 'gateway:promotion']);
  });

  it('binds a callback to the context current when bound', async () => {
    let later: (() => string | undefined) | undefined;
    withContext({ callerApp: 'cart' }, () => {
      later = bindContext(() => currentContext()?.callerApp);
    });
    assert.equal(later?.(), 'cart');
    assert.equal(
      runWithContext(createContext({ callerApp: 'other' }), () => later?.()),
      'cart',
    );
  });

  it('derives children in the same trace and merges tags', () => {
    const root = createContext({ tags: { canary: 'true' }, baggage: { user: '42' } });
    const child = childContext(root, { tags: { region: 'hz' } });
    assert.equal(child.traceId, root.traceId);
    assert.equal(child.parentSpanId, root.spanId);
    assert.notEqual(child.spanId, root.spanId);
    assert.deepEqual(child.tags, { canary: 'true', region: 'hz' });
    assert.deepEqual(child.baggage, { user: '42' });
  });

  it('only lets a deadline move earlier', () => {
    const now = Date.now();
    const root = createContext({ deadline: now + 1000 });
    assert.equal(deriveContext(root, { deadline: now + 5000 }).deadline, now + 1000);
    assert.equal(deriveContext(root, { deadline: now + 500 }).deadline, now + 500);
    const viaTimeout = deriveContext(root, { timeoutMs: 100 });
    assert.ok(viaTimeout.deadline! <= Date.now() + 100);
  });

  it('reports remaining time and refuses work past the deadline', () => {
    assert.equal(remainingTime(createContext()), Number.POSITIVE_INFINITY);
    const late = createContext({ deadline: Date.now() - 50 });
    assert.ok(remainingTime(late) < 0);
    assert.throws(
      () => assertDeadline('inventory.deduct', late),
      (err) => isPeakError(err, 'PEAK_DEADLINE_EXCEEDED') && /inventory\.deduct/.test(err.message),
    );
    assert.doesNotThrow(() => assertDeadline('x', createContext({ timeoutMs: 1000 })));
  });
});
