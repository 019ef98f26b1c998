/**
 * The call context as a header map, the one wire form shared by RPC frames, message
 * properties and gateway HTTP headers. Trace ids travel as W3C `traceparent`, user baggage
 * as W3C `baggage`; Peakware's own fields use `peak-*` headers. The deadline travels as the
 * time remaining (`peak-timeout`, ms), so clock skew between hosts cannot stretch it.
 *
 * Decoding never throws: headers come from the network, and a malformed one is dropped (as
 * the W3C spec asks for `traceparent`), never allowed to fail the request that carried it.
 */
import { type CallContext, type ContextInit, createContext } from './context.js';

/** Header names, lowercase as HTTP/2 and our frames carry them. */
export const ContextHeaders = {
  traceparent: 'traceparent',
  baggage: 'baggage',
  timeout: 'peak-timeout',
  caller: 'peak-caller',
  stress: 'peak-stress',
  tags: 'peak-tags',
} as const;

/** A header map as carried by frames and HTTP (values may arrive as arrays from node:http). */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** Limits from the W3C baggage spec, applied to both baggage and tags. */
const MAX_ENTRIES = 180;
const MAX_BYTES = 8192;
const MAX_CALLER_LENGTH = 128;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// Contexts share their frozen tag and baggage maps down the chain, so each map is encoded
// once; and a service sees the same few header values again and again, so each distinct
// header value is parsed once (bounded cache).
const encoded = new WeakMap<object, string>();
const decoded = new Map<string, Readonly<Record<string, string>>>();
const DECODED_CACHE_SIZE = 256;

function encodeListCached(map: Readonly<Record<string, string>>): string {
  if (!Object.isFrozen(map)) return encodeList(map);
  let text = encoded.get(map);
  if (text === undefined) {
    text = encodeList(map);
    encoded.set(map, text);
  }
  return text;
}

function decodeListCached(
  header: string | undefined,
): Readonly<Record<string, string>> | undefined {
  if (header === undefined) return undefined;
  const hit = decoded.get(header);
  if (hit !== undefined) return hit;
  const map = decodeList(header);
  if (map === undefined) return undefined;
  const frozen = Object.freeze(map);
  if (decoded.size >= DECODED_CACHE_SIZE) decoded.delete(decoded.keys().next().value as string);
  decoded.set(header, frozen);
  return frozen;
}

function encodeList(map: Readonly<Record<string, string>>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(map)) {
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  }
  return parts.join(',');
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

function decodeList(header: string | undefined): Record<string, string> | undefined {
  if (header === undefined || header.length === 0 || header.length > MAX_BYTES) return undefined;
  // Percent-decoding is only needed when a '%' occurs at all (rare): skip it otherwise.
  const encoded = header.includes('%');
  const out: Record<string, string> = {};
  let count = 0;
  for (const member of header.split(',')) {
    if (count >= MAX_ENTRIES) break;
    // Properties after ';' (W3C baggage metadata) are not used by Peakware; drop them.
    const semi = member.indexOf(';');
    const pair = semi < 0 ? member : member.slice(0, semi);
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    let key: string | undefined = pair.slice(0, eq).trim();
    let value: string | undefined = pair.slice(eq + 1).trim();
    if (encoded) {
      key = safeDecode(key);
      value = safeDecode(value);
    }
    if (key === undefined || value === undefined || key.length === 0) continue;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    out[key] = value;
    count++;
  }
  return count === 0 ? undefined : out;
}

function first(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.join(',');
  return value;
}

/** The context as headers, ready to put on an RPC frame, a message or an HTTP request. */
export function encodeContext(ctx: CallContext, now: number = Date.now()): Record<string, string> {
  const headers: Record<string, string> = {
    [ContextHeaders.traceparent]: `00-${ctx.traceId}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}`,
  };
  if (ctx.deadline !== undefined) {
    headers[ContextHeaders.timeout] = String(Math.max(0, Math.floor(ctx.deadline - now)));
  }
  if (ctx.callerApp !== undefined) headers[ContextHeaders.caller] = ctx.callerApp;
  if (ctx.stress) headers[ContextHeaders.stress] = '1';
  if (Object.keys(ctx.tags).length > 0) headers[ContextHeaders.tags] = encodeListCached(ctx.tags);
  if (Object.keys(ctx.baggage).length > 0) {
    headers[ContextHeaders.baggage] = encodeListCached(ctx.baggage);
  }
  return headers;
}

function isLowerHex(text: string, from: number, to: number): boolean {
  let nonZero = false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (c !== 48) nonZero = true;
    } else if (c >= 97 && c <= 102) nonZero = true;
    else return false;
  }
  return nonZero || to - from === 2;
}

/** Parses a W3C `traceparent`; undefined when it is malformed or uses an all-zero id. */
export function parseTraceparent(
  value: string | undefined,
): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  // version(2) - trace-id(32) - parent-id(16) - flags(2): 55 characters for version 00.
  if (v.length < 55 || v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const version = v.slice(0, 2);
  if (!isLowerHex(v, 0, 2) || version === 'ff') return undefined;
  // Version 00 has exactly four fields; later versions may append more after a '-'.
  if (v.length > 55 && (version === '00' || v[55] !== '-')) return undefined;
  // isLowerHex is also false for an all-zero id.
  if (!isLowerHex(v, 3, 35) || !isLowerHex(v, 36, 52) || !isLowerHex(v, 53, 55)) return undefined;
  return {
    traceId: v.slice(3, 35),
    spanId: v.slice(36, 52),
    sampled: (Number.parseInt(v.slice(53, 55), 16) & 1) === 1,
  };
}

/**
 * The context the headers describe: the caller's trace and span (start your own span with
 * `childContext`), its remaining time as a local deadline, caller, stress flag, tags and
 * baggage. Missing or malformed headers give a fresh root context with those fields unset.
 */
export function decodeContext(headers: HeaderMap, now: number = Date.now()): CallContext {
  // Built by assignment, not object spreads: this runs once per inbound call.
  const init: ContextInit = {};
  const parent = parseTraceparent(first(headers[ContextHeaders.traceparent]));
  if (parent !== undefined) {
    init.traceId = parent.traceId;
    init.spanId = parent.spanId;
    init.sampled = parent.sampled;
  }
  const timeoutText = first(headers[ContextHeaders.timeout]);
  if (timeoutText !== undefined) {
    const timeout = Number(timeoutText);
    if (Number.isFinite(timeout) && timeout >= 0) init.deadline = now + timeout;
  }
  const caller = first(headers[ContextHeaders.caller])?.trim();
  if (
    caller !== undefined &&
    caller.length > 0 &&
    caller.length <= MAX_CALLER_LENGTH &&
    TOKEN.test(caller)
  ) {
    init.callerApp = caller;
  }
  init.stress = first(headers[ContextHeaders.stress]) === '1';
  const tags = decodeListCached(first(headers[ContextHeaders.tags]));
  if (tags !== undefined) init.tags = tags as Record<string, string>;
  const baggage = decodeListCached(first(headers[ContextHeaders.baggage]));
  if (baggage !== undefined) init.baggage = baggage as Record<string, string>;
  return createContext(init);
}
