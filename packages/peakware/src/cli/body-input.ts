/**
 * Where a command's body argument comes from: the argument's text, `@FILE` for a file's
 * bytes, or `-` (or no argument, when stdin is not a terminal) for standard input. A text
 * that starts with `@` is written `@@...`.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../core/errors.js';

/** Reads all of `stream` into one buffer. */
async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer | string));
  return Buffer.concat(chunks);
}

/**
 * The bytes `arg` names (see the module comment). `what` names the argument in errors,
 * e.g. `'peak mq send' body`; `stdin` defaults to the process's.
 */
export async function readBodyArgument(
  arg: string | undefined,
  what: string,
  stdin: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin,
): Promise<Buffer> {
  if (arg === '-' || (arg === undefined && stdin.isTTY !== true)) return readAll(stdin);
  if (arg === undefined) {
    throw new UsageError(
      `${what} is missing: give it as an argument, @FILE to read a file, or - to read stdin`,
    );
  }
  if (arg.startsWith('@@')) return Buffer.from(arg.slice(1));
  if (arg.startsWith('@')) {
    const file = arg.slice(1);
    try {
      return await readFile(file);
    } catch (err) {
      throw new UsageError(
        `${what}: cannot read '${file}' (${(err as NodeJS.ErrnoException).code ?? String(err)}); a text that starts with @ is written @@...`,
        { cause: err },
      );
    }
  }
  return Buffer.from(arg);
}
