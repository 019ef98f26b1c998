/**
 * How the coordinator calls an HTTP branch: a POST of the payload as JSON to the branch's
 * URL, with the global id, branch and operation in `peak-txn-*` headers (and as baggage),
 * the submitter's trace in `traceparent`, the time left in `peak-timeout`, and the
 * coordinator's signed identity as `authorization: Bearer <token>` (an EdDSA JWT of app
 * `peak-txn`, verifiable against the control plane's keys at `/api/v1/identity/keys`).
 *
 * The answer: 2xx is done (a JSON body is the result, as an RPC branch's return value);
 * 409 is a refusal for good (PEAK_TXN_BRANCH_FAILED: no retry, the transaction rolls back);
 * anything else, or no answer in time, is PEAK_TXN_BRANCH_UNAVAILABLE, which the
 * coordinator tries again under the step's policy. A URL outside the allowed prefixes is
 * refused here too, not only at submit: a stored transaction may outlive a narrowed list.
 */
import { createContext } from '../../core/context.js';
import { encodeContext } from '../../core/context-headers.js';
import { ErrorCodes, errorMessage, PeakError } from '../../core/errors.js';
import { parseHttpUrl, urlAllowed } from '../../core/url-allow-list.js';
import { branchBaggage, TXN_HTTP_HEADERS, type TxnBranch } from '../branch-context.js';
import { BranchRefusedError } from '../branch-refused.js';
import type { HttpBranchCall } from '../txn-types.js';

/** The longest answer body read (a branch's result is small; more is cut and refused). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** What the HTTP caller needs: the allowed prefixes and the identity to send. */
export interface HttpBranchCallerOptions {
  prefixes: readonly URL[];
  /** The coordinator's current identity token, or undefined when it has none. */
  identity?: () => string | undefined;
}

function unavailable(message: string, details: Record<string, unknown>): PeakError {
  return new PeakError(ErrorCodes.TXN_BRANCH_UNAVAILABLE, message, { details });
}

/** Error codes of a connection that was never made: the request provably did not arrive. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Calls HTTP branches (see the header). */
export class HttpBranchCaller {
  readonly #o: HttpBranchCallerOptions;

  constructor(options: HttpBranchCallerOptions) {
    this.#o = options;
  }

  async call(
    target: HttpBranchCall,
    payload: unknown,
    branch: TxnBranch,
    timeoutMs: number,
    traceId: string | undefined,
  ): Promise<unknown> {
    const url = parseHttpUrl(target.url);
    if (typeof url === 'string' || !urlAllowed(url, this.#o.prefixes)) {
      throw new BranchRefusedError(
        `${target.url} is not under an HTTP branch prefix this server allows (txn.httpBranches / PEAK_TXN_HTTP_BRANCHES)`,
        { url: target.url },
      );
    }
    const ctx = createContext({
      timeoutMs,
      baggage: branchBaggage(branch),
      ...(traceId === undefined ? {} : { traceId }),
    });
    const headers: Record<string, string> = {
      ...encodeContext(ctx),
      'content-type': 'application/json',
      accept: 'application/json',
      [TXN_HTTP_HEADERS.gid]: branch.gid,
      [TXN_HTTP_HEADERS.branch]: branch.branch,
      [TXN_HTTP_HEADERS.op]: branch.op,
    };
    const token = this.#o.identity?.();
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const where = { url: target.url, gid: branch.gid, branch: branch.branch, op: branch.op };
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify(payload ?? {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      const timedOut = (err as Error).name === 'TimeoutError';
      throw unavailable(
        timedOut
          ? `${branch.op} of branch ${branch.branch}: ${target.url} did not answer within ${timeoutMs} ms`
          : `${branch.op} of branch ${branch.branch}: ${target.url} could not be reached: ${code ?? errorMessage(err)}`,
        { ...where, ...(code !== undefined && NOT_SENT.has(code) ? { sent: false } : {}) },
      );
    }
    const text = await readCapped(res).catch((err: unknown) => {
      throw unavailable(
        `${branch.op} of branch ${branch.branch}: reading the answer of ${target.url} failed: ${errorMessage(err)}`,
        { ...where, status: res.status },
      );
    });
    if (res.status === 409) {
      throw new BranchRefusedError(
        `${target.url} refused ${branch.op} of branch ${branch.branch}: ${answerMessage(text)}`,
        where,
      );
    }
    if (res.status < 200 || res.status > 299) {
      throw unavailable(
        `${branch.op} of branch ${branch.branch}: ${target.url} answered ${res.status}: ${answerMessage(text)}`,
        { ...where, status: res.status },
      );
    }
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // A 2xx that is not JSON is still done; its text is the result.
      return text;
    }
  }
}

/** The body's text, at most {@link MAX_ANSWER_BYTES}; a longer one rejects (the fetch's timeout bounds the read). */
async function readCapped(res: Response): Promise<string> {
  const length = Number(res.headers.get('content-length') ?? Number.NaN);
  if (length > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    throw new Error(`its answer is ${length} bytes, more than ${MAX_ANSWER_BYTES}`);
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new Error(`its answer is more than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** What an error answer says: a JSON body's `message` (or `error.message`), else its first 300 characters. */
function answerMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown; error?: { message?: unknown } };
    const m = body.message ?? body.error?.message;
    if (typeof m === 'string' && m !== '') return m.slice(0, 300);
  } catch {
    // not JSON
  }
  return text === '' ? '(no body)' : text.slice(0, 300);
}
