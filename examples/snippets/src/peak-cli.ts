/**
 * The operator's side of a snippet: `peak` commands (publish a config, start a gray
 * release), run in this process through the CLI that `peakware/cli` exports, against the
 * snippet's server with its admin token. Only the snippets that need it import it.
 */
import { Writable } from 'node:stream';
import { rootCommand, runCli } from 'peakware/cli';
import { adminToken, server } from './env.js';

/**
 * Runs a `peak` command in this process (the CLI from `peakware/cli`), exactly as typed in a
 * terminal against `server` with the admin token, and returns what it printed. Snippets
 * use it for the operator's side of a feature (publish a config, create a topic); it
 * fails the snippet when the command exits non-zero.
 */
export async function peak(...args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        append(chunk.toString());
        done();
      },
    });
  const code = await runCli(rootCommand, args, {
    stdout: sink((t) => (out += t)),
    stderr: sink((t) => (err += t)),
    env: { ...process.env, PEAK_SERVER: server, PEAK_TOKEN: adminToken() },
  });
  if (code !== 0) throw new Error(`peak ${args.join(' ')} exited ${code}: ${err.trim()}`);
  return out;
}
