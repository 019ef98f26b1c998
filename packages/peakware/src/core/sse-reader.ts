/**
 * The one Server-Sent-Events reader of the SDK (config and registry watches), on the npm
 * package `eventsource-parser`: spec-correct framing (`\n`, `\r\n` or `\r` line ends, events
 * split across chunks, multi-line `data:` joined with `\n`, one leading space stripped,
 * comments and `retry:` ignored), so the control plane can change how it writes events
 * without breaking clients.
 */
import { createParser } from 'eventsource-parser';

/** One event of a stream. */
export interface SseEvent {
  /** The `event:` field; `message` when the server sent none (as in browsers). */
  event: string;
  /** The `data:` lines, joined with `\n`. */
  data: string;
  /** The `id:` field, if any. */
  id?: string;
}

/** Largest event accepted, bytes; past it the stream is treated as broken. */
export const MAX_SSE_EVENT_BYTES = 16 * 1024 * 1024;

/**
 * Reads `body` (chunks as they arrive) and calls `onEvent` per event. Resolves when the
 * body ends; rejects when it errors, when an event outgrows {@link MAX_SSE_EVENT_BYTES},
 * or when `onEvent` throws (the caller then closes the stream).
 */
export async function readSseEvents(
  body: AsyncIterable<Buffer | Uint8Array | string>,
  onEvent: (event: SseEvent) => void,
  maxEventBytes = MAX_SSE_EVENT_BYTES,
): Promise<void> {
  let failure: Error | undefined;
  const parser = createParser({
    maxBufferSize: maxEventBytes,
    onEvent: (e) => {
      if (failure !== undefined) return;
      try {
        onEvent({
          event: e.event ?? 'message',
          data: e.data,
          ...(e.id === undefined ? {} : { id: e.id }),
        });
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
      }
    },
    onError: (err) => {
      if (err.type === 'max-buffer-size-exceeded') {
        failure ??= new Error(`the event stream sent an event over ${maxEventBytes} bytes`);
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (failure !== undefined) throw failure;
  }
}
