/**
 * The supervisor's seams for a program that runs it in its own process (the shop's chain),
 * on real processes (`node -e` instances, no control plane): the start, ready and exit
 * events with the instance's pid, the ready check on the log's lines (an instance is
 * `starting` until its line), a kill reported with its signal and restarted after the
 * backoff given, a start not ready in time killed and restarted, a start that fails
 * reported as not ready, and a stop's exits marked expected. The waits are bounds for a
 * loaded machine; no timing is asserted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { processAlive } from './process-probe.js';
import { Supervisor, type SupervisorEvent, type SupervisorOptions } from './supervisor.js';

const dirs: string[] = [];

after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A `node -e` command line (the script quoted for splitCommand). */
const nodeScript = (script: string) => `"${process.execPath}" -e "${script}"`;

/** Prints a line, then its ready line after `ms`, and stays up until SIGTERM. */
const readyAfter = (ms: number) =>
  nodeScript(
    `console.log('warming up'); setTimeout(() => console.log(JSON.stringify({ event: 'ready', pid: process.pid })), ${ms}); process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);`,
  );

async function waitFor(what: () => string, check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function supervised(
  services: { name: string; command: string; instances?: number }[],
  options: Partial<SupervisorOptions> = {},
) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peak-supervisor-events-'));
  dirs.push(dir);
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor({
    spec: {
      app: 'eventtest',
      cwd: dir,
      services: services.map((s) => ({
        name: s.name,
        command: s.command,
        instances: s.instances ?? 1,
        version: 'v1',
        stopTimeoutMs: 5000,
        env: {},
      })),
    },
    stateDir: dir,
    tickMs: 50,
    ready: { line: (l) => l.includes('"event":"ready"'), timeoutMs: 20_000 },
    restartBackoff: { initialMs: 100, factor: 1, maxMs: 100, jitter: 'none' },
    onEvent: (e) => events.push(e),
    ...options,
  });
  return { supervisor, events, dir };
}

const describeEvents = (events: SupervisorEvent[]) =>
  events.map((e) => `${e.type} ${e.instance.id} ${e.instance.pid}`).join('; ');

describe('Supervisor events and ready check', { timeout: 120_000 }, () => {
  it('tells start, then ready with the ready line; the instance is starting until then', async () => {
    const { supervisor, events, dir } = await supervised([
      { name: 'svc', command: readyAfter(1500) },
    ]);
    await supervisor.start();
    try {
      await waitFor(
        () => `a start event: ${describeEvents(events)}`,
        () => events.some((e) => e.type === 'start'),
      );
      const start = events.find((e) => e.type === 'start')!;
      assert.equal(start.instance.id, 'svc-v1-1');
      assert.ok(start.instance.pid > 0 && processAlive(start.instance.pid));
      // The ready line comes 1.5 s after the process starts: not before.
      if (!events.some((e) => e.type === 'ready'))
        assert.equal(supervisor.instances()[0]?.state, 'starting');
      await waitFor(
        () => `a ready event: ${describeEvents(events)}`,
        () => events.some((e) => e.type === 'ready'),
      );
      const ready = events.find((e) => e.type === 'ready');
      assert.ok(ready?.type === 'ready');
      assert.equal(ready.instance.pid, start.instance.pid);
      assert.deepEqual(JSON.parse(ready.line ?? ''), { event: 'ready', pid: start.instance.pid });
      const [now] = supervisor.instances();
      assert.equal(now?.state, 'running');
      assert.equal(now?.pid, start.instance.pid);
      // stdout still goes to the instance's log file.
      const log = await readFile(path.join(dir, 'svc-v1-1.log'), 'utf8');
      assert.match(log, /warming up\n\{"event":"ready"/);
    } finally {
      await supervisor.stop();
    }
    const exit = events.find((e) => e.type === 'exit');
    assert.ok(exit?.type === 'exit', describeEvents(events));
    assert.equal(exit.expected, true);
    assert.equal(exit.ready, true);
    assert.ok(!processAlive(exit.instance.pid));
  });

  it('reports a kill with its signal, restarts after the given backoff and tells the new pid', async () => {
    const { supervisor, events } = await supervised([{ name: 'svc', command: readyAfter(0) }]);
    await supervisor.start();
    try {
      await waitFor(
        () => `ready: ${describeEvents(events)}`,
        () => events.some((e) => e.type === 'ready'),
      );
      const first = supervisor.instances()[0]!.pid;
      process.kill(first, 'SIGKILL');
      await waitFor(
        () => `a second ready: ${describeEvents(events)}`,
        () => events.filter((e) => e.type === 'ready').length === 2,
      );
      const exit = events.find((e) => e.type === 'exit');
      assert.ok(exit?.type === 'exit');
      assert.equal(exit.instance.pid, first);
      assert.equal(exit.signal, 'SIGKILL');
      assert.equal(exit.code, null);
      assert.equal(exit.expected, false);
      assert.equal(exit.ready, true);
      assert.equal(exit.restartInMs, 100);
      const again = events.filter((e) => e.type === 'ready')[1]!;
      assert.notEqual(again.instance.pid, first);
      assert.equal(again.instance.restarts, 1);
      assert.equal(supervisor.instances()[0]?.pid, again.instance.pid);
    } finally {
      await supervisor.stop();
    }
  });

  it('kills a start not ready in time and tries again; a start that fails is told as not ready', async () => {
    const { supervisor, events } = await supervised(
      [
        { name: 'silent', command: readyAfter(600_000) },
        { name: 'failing', command: nodeScript('process.exit(3)') },
      ],
      { ready: { line: (l) => l.includes('"event":"ready"'), timeoutMs: 1000 } },
    );
    await supervisor.start();
    try {
      await waitFor(
        () => `two timed-out starts and two failed ones: ${describeEvents(events)}`,
        () => {
          const exits = events.filter((e) => e.type === 'exit');
          return (
            exits.filter((e) => e.instance.service === 'silent').length >= 2 &&
            exits.filter((e) => e.instance.service === 'failing').length >= 2
          );
        },
      );
    } finally {
      await supervisor.stop();
    }
    const exits = events.filter((e) => e.type === 'exit');
    const silent = exits.find((e) => e.instance.service === 'silent');
    assert.ok(silent?.type === 'exit');
    assert.equal(silent.readyTimedOut, true);
    assert.equal(silent.signal, 'SIGKILL');
    assert.equal(silent.ready, false);
    const failing = exits.find((e) => e.instance.service === 'failing');
    assert.ok(failing?.type === 'exit');
    assert.equal(failing.code, 3);
    assert.equal(failing.ready, false);
    assert.equal(failing.readyTimedOut, false);
    assert.equal(failing.expected, false);
    assert.ok(!events.some((e) => e.type === 'ready'), describeEvents(events));
  });

  it('writes stderr to the log by default, and leaves it to the supervisor with stderr inherit', async () => {
    const command = nodeScript(
      `console.error('on stderr'); console.log(JSON.stringify({ event: 'ready' })); process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);`,
    );
    for (const stderr of ['log', 'inherit'] as const) {
      const { supervisor, events, dir } = await supervised([{ name: 'svc', command }], { stderr });
      await supervisor.start();
      try {
        await waitFor(
          () => `ready: ${describeEvents(events)}`,
          () => events.some((e) => e.type === 'ready'),
        );
      } finally {
        await supervisor.stop();
      }
      const log = await readFile(path.join(dir, 'svc-v1-1.log'), 'utf8');
      if (stderr === 'log') assert.match(log, /on stderr/);
      else assert.doesNotMatch(log, /on stderr/);
    }
  });

  it('without a ready check an instance is ready once spawned', async () => {
    const { supervisor, events } = await supervised([{ name: 'svc', command: readyAfter(0) }], {
      ready: undefined,
    });
    await supervisor.start();
    try {
      assert.deepEqual(
        events.map((e) => e.type),
        ['start', 'ready'],
      );
      assert.equal(supervisor.instances()[0]?.state, 'running');
    } finally {
      await supervisor.stop();
    }
  });
});
