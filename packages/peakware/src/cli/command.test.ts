import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Command, lazyCommand, resolve, withSubcommandsLoaded } from './command.js';

describe('cli command tree: lazy commands', () => {
  let loads = 0;
  const mq: Command = { name: 'mq', summary: 'message queue', run: () => 0 };
  const root: Command = {
    name: 'peak',
    summary: 'root',
    options: { version: { type: 'boolean', description: 'version' } },
    subcommands: [
      lazyCommand('mq', async () => {
        loads++;
        return mq;
      }),
      lazyCommand('broken', async () => {
        throw new Error('must not load');
      }),
    ],
    run: () => 0,
  };

  it('resolving root options loads no command module', async () => {
    const r = await resolve(root, ['--version'], {});
    assert.equal(r.command, root);
    assert.equal(loads, 0);
  });

  it('loads only the chosen command, once', async () => {
    const a = await resolve(root, ['mq'], {});
    const b = await resolve(root, ['mq'], {});
    assert.equal(a.command, mq);
    assert.equal(b.command, mq);
    assert.equal(loads, 1);
  });

  it('help loads every subcommand for its summary, and a module that fails says so', async () => {
    await assert.rejects(withSubcommandsLoaded(root), /must not load/);
    const ok = await withSubcommandsLoaded({ ...root, subcommands: [root.subcommands![0]!] });
    assert.equal(ok.subcommands![0]!.summary, 'message queue');
  });

  it('an unknown command names the known ones without loading them', async () => {
    await assert.rejects(resolve(root, ['nope'], {}), /has: mq, broken/);
  });
});
