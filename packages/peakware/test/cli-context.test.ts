/**
 * The CLI against a real peak server: contexts (`peak context add|use|ls|rm`, PEAK_CONTEXT)
 * choose the server and the token file, and a refused token names the context, the server
 * and the file; `mq send` takes its body from stdin and from @FILE; numbers are checked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PeakServer } from '../src/server/peak-server.js';
import { PEAK_CLI } from './support/peak-process.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `peak <args>` with `input` on its stdin (none: an empty stdin) and `env` added. */
function peak(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<Run> {
  const child = spawn(process.execPath, [PEAK_CLI, ...args], {
    env: { ...process.env, PEAK_SERVER: '', PEAK_TOKEN: '', PEAK_CONTEXT: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('peak CLI: contexts, refused tokens, message bodies', { timeout: 180_000 }, () => {
  let server: PeakServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'peak-cli-context-'));
    server = await PeakServer.start({ dataDir: path.join(dir, 'data'), port: 0 });
    await writeFile(path.join(dir, 'good-token'), `${server.info.adminToken}\n`);
    await writeFile(path.join(dir, 'stale-token'), 'peak_stale-token-of-another-server\n');
    // A folder with no .peak: the token can only come from the context.
    env = { PEAK_CONFIG_DIR: path.join(dir, 'config'), PEAK_DATA: path.join(dir, 'nowhere') };
  });

  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a context supplies the server and the token file; PEAK_CONTEXT picks another', async () => {
    const add = (name: string, token: string, ...more: string[]) =>
      peak(
        ['context', 'add', name, '--server', server.info.url, '--token-file', token, ...more],
        env,
      );
    assert.equal((await add('good', path.join(dir, 'good-token'), '--use')).code, 0);
    assert.equal((await add('stale', path.join(dir, 'stale-token'))).code, 0);
    const ls = JSON.parse((await peak(['context', 'ls', '--json'], env)).stdout) as {
      current: string;
      contexts: { name: string; inUse: boolean }[];
    };
    assert.equal(ls.current, 'good');
    assert.deepEqual(
      ls.contexts.map((c) => [c.name, c.inUse]),
      [
        ['good', true],
        ['stale', false],
      ],
    );

    const created = await peak(['mq', 'topics', 'create', 'ctx-topic'], env);
    assert.equal(created.code, 0, created.stderr);

    const refused = await peak(['mq', 'topics', 'create', 'other'], {
      ...env,
      PEAK_CONTEXT: 'stale',
    });
    assert.equal(refused.code, 1);
    const lines = refused.stderr.trimEnd().split('\n');
    assert.match(lines[0]!, /^peak: error: .*\[PEAK_(UNAUTHENTICATED|FORBIDDEN)\]$/);
    assert.ok(lines[1]!.includes(`context 'stale'`), lines[1]);
    assert.ok(lines[1]!.includes(server.info.url), lines[1]);
    assert.ok(lines[1]!.includes(path.join(dir, 'stale-token')), lines[1]);

    // --server wins over the context; an unknown context is a usage error naming the known.
    const unknown = await peak(['mq', 'topics', 'list'], { ...env, PEAK_CONTEXT: 'nope' });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no context 'nope'.*known: good, stale/);
    assert.equal((await peak(['context', 'use', 'stale'], env)).code, 0);
    assert.equal((await peak(['context', 'rm', 'stale'], env)).code, 0);
    const after = JSON.parse((await peak(['context', 'ls', '--json'], env)).stdout) as {
      current: string | null;
    };
    assert.equal(after.current, null, 'deleting the current context leaves none current');
    assert.equal((await peak(['context', 'use', 'good'], env)).code, 0);
  });

  it('mq send takes the body from stdin (- or none) and from @FILE; @@ escapes a leading @', async () => {
    const file = path.join(dir, 'order.json');
    await writeFile(file, '{"orderId":42}');
    const sends: [string[], string, string][] = [
      [['-'], 'from stdin', 'from stdin'],
      [[], 'piped, no argument', 'piped, no argument'],
      [[`@${file}`], '', '{"orderId":42}'],
      [['@@handle'], '', '@handle'],
    ];
    for (const [args, input] of sends) {
      const r = await peak(['mq', 'send', 'ctx-topic', ...args], env, input);
      assert.equal(r.code, 0, r.stderr);
    }
    const missing = await peak(['mq', 'send', 'ctx-topic', '@/no/such/file'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read '\/no\/such\/file' \(ENOENT\)/);

    const got = await peak(
      ['mq', 'consume', 'ctx-topic', '--group', 'g', '--max', '10', '--wait', '2000', '--json'],
      env,
    );
    assert.equal(got.code, 0, got.stderr);
    const bodies = (JSON.parse(got.stdout) as { messages: { body: string }[] }).messages.map((m) =>
      Buffer.from(m.body, 'base64').toString(),
    );
    assert.deepEqual(bodies.sort(), sends.map(([, , body]) => body).sort());
  });

  it('mq consume --push prints messages as they come, one JSON line each, and stops after --max', async () => {
    // The consumer runs first and waits; the messages are sent after it started.
    const consuming = peak(
      ['mq', 'consume', 'ctx-push', '--group', 'pushers', '--push', '--max', '3', '--json'],
      env,
    );
    const created = await peak(['mq', 'topics', 'create', 'ctx-push'], env);
    assert.equal(created.code, 0, created.stderr);
    for (const body of ['one', 'two', 'three']) {
      const r = await peak(['mq', 'send', 'ctx-push', body], env);
      assert.equal(r.code, 0, r.stderr);
    }
    const got = await consuming;
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stderr, /consuming ctx-push as group pushers \(push/);
    const lines = got.stdout.trim().split('\n');
    assert.equal(lines.length, 3, got.stdout);
    const bodies = lines.map((l) =>
      Buffer.from((JSON.parse(l) as { body: string }).body, 'base64').toString(),
    );
    assert.deepEqual([...bodies].sort(), ['one', 'three', 'two']);
    // The three printed were acked: the group gets the one sent next, and nothing else.
    assert.equal((await peak(['mq', 'send', 'ctx-push', 'four'], env)).code, 0);
    const rest = await peak(
      ['mq', 'consume', 'ctx-push', '--group', 'pushers', '--wait', '2000', '--json'],
      env,
    );
    assert.equal(rest.code, 0, rest.stderr);
    const left = (JSON.parse(rest.stdout) as { messages: { body: string }[] }).messages.map((m) =>
      Buffer.from(m.body, 'base64').toString(),
    );
    assert.deepEqual(left, ['four']);
  });

  it('peak top | head: a closed pipe ends peak quietly, and a pipe gets no screen clears', async () => {
    const r = await new Promise<Run>((resolve) => {
      const child = spawn(
        'bash',
        [
          '-c',
          `"${process.execPath}" "${PEAK_CLI}" top --interval 0.5 --server ${server.info.url} --token ${server.info.adminToken} 2>"${dir}/top-stderr" | head -n 2; echo "peak-exit=\${PIPESTATUS[0]}"`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr: '' });
      });
    });
    assert.match(r.stdout, /peak-exit=0$/m, r.stdout);
    assert.ok(!r.stdout.includes('\x1b['), 'no terminal escapes in a pipe');
    assert.equal(await readFile(path.join(dir, 'top-stderr'), 'utf8'), '', 'no EPIPE trace');
  });

  it('--watch redraws a list every --interval seconds; Ctrl-C (SIGINT) exits 0', async () => {
    const child = spawn(
      process.execPath,
      [PEAK_CLI, 'rpc', 'ls', '--watch', '--interval', '0.5', '--server', server.info.url],
      {
        env: { ...process.env, PEAK_TOKEN: server.info.adminToken!, PEAK_CONTEXT: '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    const frames = () => stdout.match(/^Every 0\.5 s: peak rpc ls {3}\S+$/gm)?.length ?? 0;
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const twoFrames = new Promise<void>((resolve) =>
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (frames() >= 2) resolve();
      }),
    );
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await twoFrames;
    child.kill('SIGINT');
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /no services registered/);
    assert.ok(!stdout.includes('\x1b['), 'a pipe gets no screen clears');
    const once = await peak(['rpc', 'ls', '--interval', 'soon'], env);
    assert.equal(once.code, 2);
    assert.match(once.stderr, /--interval must be a number from 0\.5 to 3600, got 'soon'/);
  });

  it('a number option that is not a whole number in range is a usage error (exit 2)', async () => {
    for (const args of [
      ['mq', 'consume', 'ctx-topic', '--max', 'abc'],
      ['mq', 'consume', 'ctx-topic', '--max', '0'],
      ['mq', 'consume', 'ctx-topic', '--wait', '1.5'],
      ['mq', 'send', 'ctx-topic', 'x', '--delay', 'soon'],
    ]) {
      const r = await peak(args, env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /must be a whole number/);
    }
  });
});
