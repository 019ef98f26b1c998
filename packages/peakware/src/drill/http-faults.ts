/**
 * Faults at HTTP routes: a Node request listener wrapped so `agent`'s `http` faults (matched
 * on the HTTP method and a path prefix) run before it. An error answers with the code's
 * HTTP status and the `{ error }` body every Peakware HTTP surface uses; a timeout answers
 * 504 after its wait; a dropped request has its socket destroyed unanswered.
 */
import type http from 'node:http';
import { httpStatusOf, isPeakError } from '../core/errors.js';
import type { DrillAgent } from './drill-agent.js';
import { runFault } from './fault-action.js';

/** A Node HTTP request listener. */
export type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * The `http` fault for one request, for servers that are not a Node request listener (the
 * gateway's HTTP front): undefined when none applies (the fast path), else a promise that
 * resolves `'drop'` (destroy the socket unanswered) or `'go'` (serve it, after a delay), or
 * rejects with the injected error (answer it with the error's status).
 */
export function httpFault(
  agent: DrillAgent,
  method: string,
  route: string,
): Promise<'drop' | 'go'> | undefined {
  if (!agent.has('http')) return undefined;
  const fault = agent.find('http', { method, route });
  if (fault === undefined) return undefined;
  return runFault(fault, `http ${method} ${route}`).then((o) => (o === 'drop' ? 'drop' : 'go'));
}

/** `handler` behind `agent`'s `http` faults. */
export function httpFaultHandler(agent: DrillAgent, handler: RequestListener): RequestListener {
  return (req, res) => {
    if (!agent.has('http')) return handler(req, res);
    const route = (req.url ?? '/').split('?')[0] ?? '/';
    const fault = agent.find('http', { method: req.method ?? 'GET', route });
    if (fault === undefined) return handler(req, res);
    runFault(fault, `http ${req.method} ${route}`).then(
      (outcome) => {
        if (outcome === 'drop') req.socket.destroy();
        else handler(req, res);
      },
      (err: unknown) => {
        const peak = isPeakError(err);
        const body = peak
          ? err.toJSON()
          : { code: 'PEAK_INTERNAL', message: (err as Error).message, details: {} };
        res.writeHead(peak ? httpStatusOf(err.code) : 500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: body }));
      },
    );
  };
}
