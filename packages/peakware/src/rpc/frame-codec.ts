/**
 * The wire format of an RPC connection: each frame is a 4-byte big-endian body length
 * followed by a msgpack body, an array whose first element is the frame type.
 *
 *   request   [1, id, serviceId, method, headers, args]
 *   response  [2, id, result]
 *   error     [3, id, { code, message, details }]
 *   ping      [4, id]          pong [5, id]
 *   goaway    [6, reason]      the provider is draining: send it no new calls
 *   identity  [7, id, token]   the consumer's signed identity for the calls that follow
 *                              on this connection (sent again when it is renewed)
 *
 * The decoder never buffers more than one frame of at most `maxFrameBytes`; a length over
 * the limit is fatal for the connection (the stream cannot be resynchronised), a body that
 * is not a valid frame is reported per frame and the stream goes on.
 */
import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';
import { ErrorCodes, PeakError } from '../core/errors.js';

/** Frame type tags. */
export const FrameType = {
  request: 1,
  response: 2,
  error: 3,
  ping: 4,
  pong: 5,
  goaway: 6,
  identity: 7,
} as const;

/** An error as it travels in an error frame. */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** A decoded frame. */
export type Frame =
  | {
      type: 1;
      id: number;
      service: string;
      method: string;
      headers: Record<string, string>;
      args: unknown;
    }
  | { type: 2; id: number; result: unknown }
  | { type: 3; id: number; error: WireError }
  | { type: 4 | 5; id: number }
  | { type: 6; reason: string }
  | { type: 7; id: number; token: string };

/** Default largest frame body, bytes (8 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024;

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

function toArray(frame: Frame): unknown[] {
  switch (frame.type) {
    case 1:
      return [1, frame.id, frame.service, frame.method, frame.headers, frame.args];
    case 2:
      return [2, frame.id, frame.result];
    case 3:
      return [3, frame.id, frame.error];
    case 4:
    case 5:
      return [frame.type, frame.id];
    case 6:
      return [6, frame.reason];
    case 7:
      return [7, frame.id, frame.token];
  }
}

/**
 * Encodes a frame with its length prefix. Throws PEAK_RPC_FRAME_TOO_LARGE when the body is
 * over `maxFrameBytes`, so an oversized call fails at the sender with a clear error.
 */
export function encodeFrame(frame: Frame, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES): Buffer {
  // msgpackr leaves 4 bytes free in front of the body for the length: no second buffer.
  const out = packr.pack(toArray(frame), RESERVE_START_SPACE | 4);
  const length = out.length - 4;
  if (length > maxFrameBytes) {
    throw new PeakError(
      ErrorCodes.RPC_FRAME_TOO_LARGE,
      `the encoded frame is ${length} bytes, over the limit of ${maxFrameBytes}; send less per call or raise maxFrameBytes on both sides`,
      { details: { bytes: length, limit: maxFrameBytes } },
    );
  }
  out.writeUInt32BE(length, 0);
  return out;
}

function protocolError(message: string, id?: number): PeakError {
  return new PeakError(ErrorCodes.RPC_PROTOCOL, `malformed RPC frame: ${message}`, {
    details: id === undefined ? {} : { id },
  });
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

function isStringMap(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const v of Object.values(value)) if (typeof v !== 'string') return false;
  return true;
}

/** Decodes one frame body; throws PEAK_RPC_PROTOCOL (with `details.id` when known). */
export function decodeFrameBody(body: Uint8Array): Frame {
  let value: unknown;
  try {
    value = unpackr.unpack(body);
  } catch (err) {
    throw protocolError(`body is not msgpack (${(err as Error).message})`);
  }
  if (!Array.isArray(value) || value.length < 2) throw protocolError('body is not a frame array');
  const [type, id] = value as [unknown, unknown];
  if (type === 6) {
    return { type: 6, reason: typeof id === 'string' ? id : '' };
  }
  if (!isId(id)) throw protocolError('frame id is not an unsigned 32-bit integer');
  switch (type) {
    case 1: {
      const [, , service, method, headers, args] = value as unknown[];
      if (typeof service !== 'string' || typeof method !== 'string') {
        throw protocolError('request names no service or method', id);
      }
      if (headers !== undefined && headers !== null && !isStringMap(headers)) {
        throw protocolError('request headers are not a map of strings', id);
      }
      return {
        type: 1,
        id,
        service,
        method,
        headers: (headers as Record<string, string>) ?? {},
        args,
      };
    }
    case 2:
      return { type: 2, id, result: value[2] };
    case 3: {
      const e = value[2] as Partial<WireError> | undefined;
      if (typeof e !== 'object' || e === null || typeof e.code !== 'string') {
        throw protocolError('error frame carries no error', id);
      }
      return {
        type: 3,
        id,
        error: {
          code: e.code,
          message: typeof e.message === 'string' ? e.message : e.code,
          ...(typeof e.details === 'object' && e.details !== null ? { details: e.details } : {}),
        },
      };
    }
    case 4:
    case 5:
      return { type, id };
    case 7: {
      const token = value[2];
      if (typeof token !== 'string') throw protocolError('identity frame carries no token', id);
      return { type: 7, id, token };
    }
    default:
      throw protocolError(`unknown frame type ${String(type)}`, id);
  }
}

/** Splits a byte stream into frames. One per connection. */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #total = 0;
  /** Bytes needed before the next frame can be decoded. */
  #needed = 4;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#total;
  }

  /**
   * Feeds a chunk; calls `onFrame` for each whole frame and `onBadFrame` for each frame
   * whose body is malformed. Throws PEAK_RPC_FRAME_TOO_LARGE or PEAK_RPC_PROTOCOL when the
   * stream itself is broken (the connection must then be closed).
   */
  push(
    chunk: Buffer,
    onFrame: (frame: Frame) => void,
    onBadFrame: (error: PeakError) => void,
  ): void {
    this.#chunks.push(chunk);
    this.#total += chunk.length;
    // Partial frames are collected, not concatenated chunk by chunk (no quadratic copying).
    if (this.#total < this.#needed) return;
    const buf = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#total);
    this.#chunks = [];
    this.#total = 0;
    this.#needed = 4;
    let offset = 0;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset);
      if (length > this.#maxFrameBytes) {
        throw new PeakError(
          ErrorCodes.RPC_FRAME_TOO_LARGE,
          `a frame announced ${length} bytes, over the limit of ${this.#maxFrameBytes}; the connection is closed`,
          { details: { bytes: length, limit: this.#maxFrameBytes } },
        );
      }
      if (length === 0) throw protocolError('zero-length frame; the connection is closed');
      if (buf.length - offset - 4 < length) {
        this.#needed = 4 + length;
        break;
      }
      const body = buf.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      let frame: Frame;
      try {
        frame = decodeFrameBody(body);
      } catch (err) {
        onBadFrame(err as PeakError);
        continue;
      }
      onFrame(frame);
    }
    if (offset < buf.length) {
      // Copy a small tail so a big chunk is not kept alive by a few leftover bytes.
      const rest = buf.subarray(offset);
      const kept = rest.length < 4096 ? Buffer.from(rest) : rest;
      this.#chunks.push(kept);
      this.#total = kept.length;
    }
  }
}
