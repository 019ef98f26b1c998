import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, isPeakError, PeakError } from '../core/errors.js';
import type { ServiceInstance } from '../registry/service-instance.js';
import {
  type ClusterCall,
  FailfastStrategy,
  FailoverStrategy,
  FailsafeStrategy,
  ForkingStrategy,
} from './cluster-strategy.js';
import { Endpoint } from './endpoint.js';
import { RetryBudget } from './retry-budget.js';
import { RpcConnection } from './rpc-connection.js';

const eps = ['a', 'b', 'c'].map((id, i) => {
  const instance: ServiceInstance = {
    instanceId: id,
    service: 's',
    version: '1',
    group: 'g',
    host: '127.0.0.1',
    port: 2000 + i,
    weight: 1,
    tags: [],
    metadata: {},
    status: 'up',
    startedAt: 0,
  };
  return new Endpoint(instance, new RpcConnection(instance.host, instance.port), 0);
});

const lost = () =>
  new PeakError(ErrorCodes.RPC_CONNECTION_LOST, 'lost', { details: { sent: true } });
const notSent = () =>
  new PeakError(ErrorCodes.RPC_UNAVAILABLE, 'refused', { details: { sent: false } });

/** A call whose attempts on the listed endpoints fail with the given errors. */
function call(
  idempotent: boolean,
  failures: Record<string, () => Error>,
  log: string[],
): ClusterCall {
  return {
    idempotent,
    describe: 's.m',
    select: (exclude) => {
      const e = eps.find((x) => !exclude.has(x));
      if (e === undefined) throw new PeakError(ErrorCodes.RPC_NO_PROVIDER, 'none left');
      return e;
    },
    attempt: async (e) => {
      const id = e.instance.instanceId;
      log.push(id);
      const fail = failures[id];
      if (fail !== undefined) throw fail();
      return id;
    },
  };
}

describe('cluster strategies', () => {
  it('failover retries an idempotent call lost in flight on another instance', async () => {
    const log: string[] = [];
    const r = await new FailoverStrategy(2, new RetryBudget()).invoke(call(true, { a: lost }, log));
    assert.equal(r, 'b');
    assert.deepEqual(log, ['a', 'b']);
  });

  it('failover says at debug level why a call moved to another instance', async () => {
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    const logger = {
      level: 'debug',
      fatal: () => undefined,
      error: () => undefined,
      warn: () => undefined,
      info: () => undefined,
      debug: (fields: object | string, message?: unknown) =>
        void lines.push({ fields: fields as Record<string, unknown>, message: String(message) }),
      trace: () => undefined,
      child: () => logger,
    };
    const r = await new FailoverStrategy(2, new RetryBudget(), logger).invoke(
      call(false, { a: notSent }, []),
    );
    assert.equal(r, 'b');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!.message, /s\.m failed on one instance; trying another/);
    assert.equal(lines[0]!.fields.provider, '127.0.0.1:2000');
    assert.equal(lines[0]!.fields.attempt, 1);
    assert.ok(isPeakError(lines[0]!.fields.err, ErrorCodes.RPC_UNAVAILABLE));
  });

  it('failover never retries a non-idempotent call that may have run, and says so', async () => {
    const log: string[] = [];
    await assert.rejects(
      new FailoverStrategy(2, new RetryBudget()).invoke(call(false, { a: lost }, log)),
      (err) => isPeakError(err, ErrorCodes.RPC_CONNECTION_LOST) && /not retried/.test(err.message),
    );
    assert.deepEqual(log, ['a']);
  });

  it('failover retries any call that provably did not run', async () => {
    const log: string[] = [];
    assert.equal(
      await new FailoverStrategy(2, new RetryBudget()).invoke(
        call(false, { a: notSent, b: notSent }, log),
      ),
      'c',
    );
  });

  it('failover does not retry business errors and stops at the retry count', async () => {
    const log: string[] = [];
    const boom = () => new PeakError(ErrorCodes.RPC_REMOTE, 'boom');
    await assert.rejects(
      new FailoverStrategy(2, new RetryBudget()).invoke(call(true, { a: boom }, log)),
    );
    assert.deepEqual(log, ['a']);
    const log2: string[] = [];
    await assert.rejects(
      new FailoverStrategy(1, new RetryBudget()).invoke(call(true, { a: lost, b: lost }, log2)),
    );
    assert.deepEqual(log2, ['a', 'b']);
  });

  it('the retry budget caps retries so they cannot storm', async () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 3 });
    const strategy = new FailoverStrategy(2, budget);
    let retried = 0;
    for (let i = 0; i < 50; i++) {
      const log: string[] = [];
      await strategy.invoke(call(true, { a: lost }, log)).catch(() => undefined);
      if (log.length > 1) retried++;
    }
    // 3 from the per-second floor + about 0.1 per call.
    assert.ok(retried >= 3 && retried <= 10, `retried ${retried} of 50`);
  });

  it('failfast makes one attempt; failsafe swallows the error', async () => {
    const log: string[] = [];
    await assert.rejects(new FailfastStrategy().invoke(call(true, { a: lost }, log)));
    assert.deepEqual(log, ['a']);
    assert.equal(await new FailsafeStrategy().invoke(call(true, { a: lost }, [])), undefined);
  });

  it('forking runs idempotent calls in parallel, first success wins; non-idempotent once', async () => {
    const log: string[] = [];
    assert.equal(await new ForkingStrategy(2).invoke(call(true, { a: lost }, log)), 'b');
    assert.deepEqual(log.sort(), ['a', 'b']);
    const log2: string[] = [];
    await new ForkingStrategy(3).invoke(call(false, {}, log2));
    assert.deepEqual(log2, ['a']);
  });
});
