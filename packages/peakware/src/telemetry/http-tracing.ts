/**
 * Server spans for a node:http handler: reads `traceparent`/`baggage` and Peakware's
 * context headers from the request, runs the handler in the span's context (so RPC, SQL
 * and MQ calls it makes become children) and ends the span when the response finishes.
 */
import type http from 'node:http';
import { childContext, runWithContext } from '../core/context.js';
import { ContextHeaders, decodeContext, type HeaderMap } from '../core/context-headers.js';
import type { Tracer } from './tracer.js';

/** A node:http request listener. */
export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Options for {@link traceHttp}. */
export interface TraceHttpOptions {
  /** The span name for a request; default `METHOD /path` (query string removed). */
  route?: (req: http.IncomingMessage) => string;
}

/** Wraps `handler` so every request is a server span (status ≥ 500 or a throw is an error). */
export function traceHttp(
  tracer: Tracer,
  handler: HttpHandler,
  options: TraceHttpOptions = {},
): HttpHandler {
  if (!tracer.enabled) return handler;
  return (req, res) => {
    const decoded = decodeContext(req.headers as HeaderMap);
    // With a traceparent, this span is a child of the caller's; without, it starts a trace.
    const ctx =
      req.headers[ContextHeaders.traceparent] === undefined ? decoded : childContext(decoded);
    const name = options.route?.(req) ?? `${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0]}`;
    const span = tracer.startSpan(name, {
      kind: 'server',
      context: ctx,
      attributes: { 'http.method': req.method ?? 'GET' },
    });
    res.once('close', () => {
      span.setAttribute('http.status_code', res.statusCode);
      if (res.statusCode >= 500) span.recordError(new Error(`HTTP ${res.statusCode}`));
      span.end();
    });
    try {
      runWithContext(ctx, () => handler(req, res));
    } catch (err) {
      span.recordError(err);
      throw err;
    }
  };
}
