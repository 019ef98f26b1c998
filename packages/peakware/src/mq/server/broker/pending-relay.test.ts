import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { silentLogger } from '../../../core/logger.js';
import type { MessageStore } from '../message-store.js';
import { BrokerStats } from './broker-stats.js';
import { PendingRelay } from './pending-relay.js';

/**
 * The relay's store, reduced to what the relay calls: pending rows are due times; a relay
 * statement moves the due ones. Every call is logged, so a test sees what a pass cost.
 */
function pendingStore(): { store: MessageStore; due: number[]; calls: string[] } {
  const due: number[] = [];
  const calls: string[] = [];
  const store = {
    async nextDue() {
      calls.push('nextDue');
      return due.length === 0 ? undefined : new Date(Math.min(...due));
    },
    async relayDueBulk() {
      calls.push('relayDueBulk');
      return { moved: 0, topic: null };
    },
    async relayDue() {
      calls.push('relayDue');
      const now = Date.now();
      const moved = due.filter((d) => d <= now).length;
      for (let i = due.length - 1; i >= 0; i--) if (due[i]! <= now) due.splice(i, 1);
      return { moved, rows: [] };
    },
    async trace() {},
  };
  return { store: store as unknown as MessageStore, due, calls };
}

describe('PendingRelay', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());

  function relay(store: MessageStore): PendingRelay {
    const state = { stopped: false, closing: false };
    return new PendingRelay(store, new BrokerStats(), silentLogger(), state, 5000);
  }

  it('an idle tick costs one read and no relay transaction', async () => {
    const { store, calls } = pendingStore();
    const r = relay(store);
    r.start();
    mock.timers.tick(4999);
    await r.idle();
    assert.deepEqual(calls, []);
    mock.timers.tick(1);
    await r.idle();
    assert.deepEqual(calls, ['nextDue']);
    r.halt();
  });

  it('wakes at the due time of rows this node stored, not before, and moves them', async () => {
    const { store, due, calls } = pendingStore();
    const r = relay(store);
    r.start();
    due.push(300);
    r.wakeAt(new Date(300));
    mock.timers.tick(300);
    await r.idle();
    assert.deepEqual(calls, [], 'nothing before the due time');
    mock.timers.tick(1);
    await r.idle();
    assert.deepEqual(calls, ['nextDue', 'relayDueBulk', 'relayDue', 'nextDue']);
    assert.deepEqual(due, []);
    r.halt();
  });

  it('after a pass, sleeps until the next due row it read (within the tick)', async () => {
    const { store, due, calls } = pendingStore();
    const r = relay(store);
    due.push(0, 1200);
    r.kick();
    await r.idle();
    assert.deepEqual(due, [1200]);
    calls.length = 0;
    mock.timers.tick(1200);
    await r.idle();
    assert.deepEqual(calls, [], 'not before the row is due');
    mock.timers.tick(1);
    await r.idle();
    assert.deepEqual(calls, ['nextDue', 'relayDueBulk', 'relayDue', 'nextDue']);
    assert.deepEqual(due, []);
    r.halt();
  });

  it('leaves rows due after the tick to the tick', async () => {
    const { store, calls } = pendingStore();
    const r = relay(store);
    r.wakeAt(new Date(60_000));
    mock.timers.tick(59_999);
    await r.idle();
    assert.deepEqual(calls, [], 'no tick started, no timer set');
    r.halt();
  });
});
