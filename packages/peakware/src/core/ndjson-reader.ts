/**
 * The line reader of NDJSON streams (the broker's push delivery): yields each non-empty
 * line as it completes, however the bytes were split into chunks (a line across chunks, a
 * UTF-8 character across chunks, several lines in one chunk). Blank lines are the
 * server's keep-alives and are skipped; `\r\n` is accepted.
 */

/** Largest line accepted, bytes; past it the stream is treated as broken. */
export const MAX_NDJSON_LINE_BYTES = 16 * 1024 * 1024;

/** Yields the non-empty lines of `body`; a last line without a newline is yielded at the end. */
export async function* readNdjsonLines(
  body: AsyncIterable<Buffer | Uint8Array | string>,
  maxLineBytes = MAX_NDJSON_LINE_BYTES,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(start, nl).replace(/\r$/, '');
      if (line.length > 0) yield line;
      start = nl + 1;
      nl = buffered.indexOf('\n', start);
    }
    buffered = buffered.slice(start);
    if (buffered.length > maxLineBytes) {
      throw new Error(`the stream sent a line over ${maxLineBytes} bytes`);
    }
  }
  const last = (buffered + decoder.decode()).replace(/\r$/, '');
  if (last.length > 0) yield last;
}
