/**
 * The config hub (src/config/server/config-hub.ts) when a change lands while a new watcher's
 * snapshot is being read, on a real PostgreSQL (a `peak server`'s database and its NOTIFY):
 * the snapshot read is held open after it ran, a change is published (or the item removed)
 * meanwhile, and a watcher already connected shows when the hub has handled the NOTIFY.
 * What the new watcher's stream says, applied the way the SDK applies it (a snapshot
 * replaces everything held), must end at the item's current state. It used to write the
 * change's entry before the snapshot and leave the item out of the snapshot, so the client
 * dropped an item that existed (found as a CI flake of config-center's failover test).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ConfigHub } from '../src/config/server/config-hub.js';
import { publish, removeItem } from '../src/config/server/config-store.js';
import { silentLogger } from '../src/core/logger.js';
import { PeakServer } from '../src/server/index.js';
import { quietAtShutdown } from './support/pg-pool.js';
import { waitFor } from './support/wait.js';

const actor = { author: 'test', source: 'test' };

/** A watcher's stream: what it says, applied as the SDK applies it. */
function stream(): { res: ServerResponse; state: () => Map<string, string>; text: () => string } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (b: Buffer) => {
    text += b.toString();
  });
  return {
    res: out as unknown as ServerResponse,
    text: () => text,
    state: () => {
      const held = new Map<string, string>();
      for (const block of text.split('\n\n')) {
        const event = /^event: (\w+)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event === undefined || data === undefined) continue;
        const d = JSON.parse(data) as {
          entries?: { group: string; key: string; value: string }[];
          group?: string;
          key?: string;
          value?: string;
        };
        if (event === 'snapshot') {
          held.clear();
          for (const e of d.entries ?? []) held.set(`${e.group}/${e.key}`, e.value);
        } else if (event === 'entry') held.set(`${d.group}/${d.key}`, d.value!);
        else if (event === 'removed') held.delete(`${d.group}/${d.key}`);
      }
      return held;
    },
  };
}

describe('config hub: a change while a watcher reads its snapshot', { timeout: 60_000 }, () => {
  let dataDir: string;
  let server: PeakServer;
  let pool: pg.Pool;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'peak-config-race-'));
    server = await PeakServer.start({ dataDir, port: 0 });
    pool = quietAtShutdown(new pg.Pool({ connectionString: server.postgresUrl(), max: 4 }));
  });

  after(async () => {
    await pool?.end();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  /**
   * A hub whose reads of all of `app`'s items (a snapshot's, not one item's), once `hold()`
   * is called, run and then wait for `release()` before answering: the snapshot is read,
   * and the hub hears of changes before it can write it.
   */
  async function heldHub(app: string) {
    let held: Promise<void> | undefined;
    let release = () => {};
    const gated = {
      connect: () => pool.connect(),
      query: async (...args: Parameters<pg.Pool['query']>) => {
        const result = await (pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
        const sql = typeof args[0] === 'string' ? args[0] : '';
        const values = args[1] as unknown[] | undefined;
        if (
          held !== undefined &&
          sql.includes('FROM peak.config_items') &&
          values?.[0] === app &&
          values.length === 1
        )
          await held;
        return result;
      },
    } as unknown as pg.Pool;
    const hub = new ConfigHub(gated, silentLogger());
    await hub.start();
    return {
      hub,
      hold: () => {
        held = new Promise<void>((r) => {
          release = r;
        });
      },
      release: () => {
        const r = release;
        held = undefined;
        r();
      },
    };
  }

  for (const change of ['published', 'removed'] as const) {
    it(`an item ${change} while the snapshot is read ends as it is in the database`, async () => {
      const app = `race-${change}`;
      const ref = { app, group: 'a', key: 'b' };
      await publish(pool, ref, { format: 'text', value: '1', comment: '' }, actor);
      await publish(
        pool,
        { app, group: 'a', key: 'other' },
        { format: 'text', value: 'x', comment: '' },
        actor,
      );
      const { hub, hold, release } = await heldHub(app);
      try {
        // A watcher connected before: it shows when the hub has handled the change.
        const early = stream();
        await hub.watch(early.res, app, undefined, []);
        assert.equal(early.state().get('a/b'), '1');

        hold();
        const late = stream();
        const watching = hub.watch(late.res, app, undefined, []);
        // The late watcher's read has run (it saw version 1) and waits; now the change.
        if (change === 'published')
          await publish(pool, ref, { format: 'text', value: '2', comment: '' }, actor);
        else await removeItem(pool, ref, { comment: '' }, actor);
        await waitFor('the hub handled the change', () =>
          change === 'published' ? early.state().get('a/b') === '2' : !early.state().has('a/b'),
        );
        assert.equal(late.text(), '', 'nothing goes out before the snapshot');
        release();
        await watching;
        const want = change === 'published' ? '2' : undefined;
        await waitFor(
          `the late watcher holds a/b = ${want}`,
          () => late.state().get('a/b') === want,
        );
        assert.equal(late.state().get('a/other'), 'x', 'the untouched item stays');
        assert.match(late.text(), /^event: snapshot\n/, 'the snapshot comes first');
      } finally {
        await hub.stop();
      }
    });
  }
});
