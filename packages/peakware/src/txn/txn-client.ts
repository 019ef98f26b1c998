/**
 * The SDK side of global transactions: submit a saga or a TCC transaction to the
 * coordinator (`peak server`), which calls the branches over RPC and drives the transaction
 * to its end, and run a two-phase message (a local transaction and an MQ message, both or
 * neither). One HTTP call per saga or TCC; the coordinator's writes are batched across
 * transactions on its side.
 */
import type pg from 'pg';
import { remainingTime } from '../core/context.js';
import {
  ControlPlaneClient,
  type ControlPlaneOptions,
  envCredential,
  serversOf,
} from '../core/control-plane-client.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { ControlPlaneRpcPath, USE_HTTP } from '../rpc/control-plane-path.js';
import { definitionKey, type ServiceDefinition } from '../rpc/service-definition.js';
import { BARRIER_TABLE, barrier, MSG_BRANCH } from './barrier.js';
import type {
  BranchCall,
  HttpBranchCall,
  MsgSpec,
  SagaSpec,
  TccSpec,
  TxnOutcome,
  TxnView,
} from './txn-types.js';
import { TXN_RPC_SERVICE } from './txn-types.js';

/** Options of {@link TxnClient}. */
export interface TxnClientOptions extends ControlPlaneOptions {
  /** Longest one call to the coordinator may take, ms (a waited transaction included). Default 65 000. */
  timeoutMs?: number;
  /**
   * How saga and TCC submits travel: `rpc` (the default) over one persistent connection to
   * the node's RPC port when it offers one, else HTTP; `http` always HTTP (also
   * `PEAK_TXN_TRANSPORT=http`). Everything else is HTTP either way.
   */
  transport?: 'rpc' | 'http';
}

/** How a saga or TCC is submitted. */
export interface SubmitOptions {
  /**
   * Wait for the end (default): resolves when it succeeded, rejects with PEAK_TXN_ABORTED
   * when it rolled back. With false, resolves once the coordinator holds it (`running`).
   */
  wait?: boolean;
}

const BASE = '/api/v1/txn';

/** The {@link BranchCall} of a method of a service definition, its name checked by the compiler. */
export function branchCall<D extends ServiceDefinition>(
  def: D,
  method: keyof D['methods'] & string,
  group?: string,
): BranchCall {
  return { service: definitionKey(def, group), method };
}

/**
 * A branch call to an outside service's HTTP endpoint: the coordinator POSTs the payload
 * there (the server must allow the URL's prefix, `txn.httpBranches`); the endpoint reads its
 * branch with `httpTxnBranch(req.headers)` and answers 2xx (done), 409 (refused for good) or
 * anything else (try again). See the README's "HTTP branches".
 */
export function httpBranch(url: string): HttpBranchCall {
  return { url };
}

function withContextTimeout<T extends { timeoutMs?: number }>(spec: T): T {
  // The caller's deadline bounds the global timeout when it is the earlier one.
  const left = remainingTime();
  if (!Number.isFinite(left) || left <= 0) return spec;
  const timeoutMs = Math.max(1, Math.floor(left));
  return spec.timeoutMs === undefined || spec.timeoutMs > timeoutMs ? { ...spec, timeoutMs } : spec;
}

/** A client of the transaction coordinator. */
export class TxnClient {
  readonly #http: ControlPlaneClient;
  readonly #rpc: ControlPlaneRpcPath | undefined;
  readonly #timeoutMs: number;

  constructor(options: TxnClientOptions) {
    this.#timeoutMs = options.timeoutMs ?? 65_000;
    this.#http = new ControlPlaneClient({
      servers: serversOf(options, 'TxnClient'),
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: this.#timeoutMs,
      serverName: 'the txn coordinator',
    });
    const transport =
      options.transport ?? (process.env.PEAK_TXN_TRANSPORT === 'http' ? 'http' : 'rpc');
    this.#rpc =
      transport === 'http'
        ? undefined
        : new ControlPlaneRpcPath(this.#http, options.token ?? envCredential());
  }

  /** Runs a saga: actions in order (or by their `after`), compensations on failure. */
  saga(spec: SagaSpec, options: SubmitOptions = {}): Promise<TxnOutcome> {
    return this.#submit('sagas', withContextTimeout(spec), options);
  }

  /** Runs a TCC transaction: every try at once, then every confirm, or every cancel. */
  tcc(spec: TccSpec, options: SubmitOptions = {}): Promise<TxnOutcome> {
    return this.#submit('tccs', withContextTimeout(spec), options);
  }

  async #submit(path: string, spec: object, options: SubmitOptions): Promise<TxnOutcome> {
    const wait = options.wait ?? true;
    // A retried POST is harmless: the same gid is taken once.
    const body = { ...spec, wait };
    const retry = (spec as { gid?: string }).gid !== undefined;
    const outcome = await this.#call<TxnOutcome>(
      path === 'sagas' ? 'saga' : 'tcc',
      `${BASE}/${path}`,
      body,
      retry,
    );
    if (wait && outcome.status === 'failed') {
      throw new PeakError(
        ErrorCodes.TXN_ABORTED,
        `global transaction ${outcome.gid} rolled back: ${outcome.reason ?? 'no reason given'}`,
        { details: { gid: outcome.gid, reason: outcome.reason } },
      );
    }
    return outcome;
  }

  /**
   * One call to the coordinator: `method` of `peak.txn` with `body` on the node's RPC port
   * when it offers one, else a POST to `route` (of `httpBody`, default `body`; `retry`: safe
   * to send again).
   */
  #call: CoordinatorCall = async <T>(
    method: string,
    route: string,
    body: object,
    retry: boolean,
    httpBody: object = body,
  ): Promise<T> => {
    const overRpc =
      this.#rpc === undefined
        ? USE_HTTP
        : await this.#rpc.call<T>(TXN_RPC_SERVICE, method, { body }, this.#timeoutMs, retry);
    return overRpc !== USE_HTTP ? overRpc : this.#http.post<T>(route, httpBody, { retry });
  };

  /** Prepares a two-phase message; {@link PreparedMessage.run} runs its local transaction. */
  async message(spec: MsgSpec): Promise<PreparedMessage> {
    const { gid } = await this.#call<{ gid: string }>(
      'msgPrepare',
      `${BASE}/msgs`,
      spec,
      spec.gid !== undefined,
    );
    return new PreparedMessage(this.#call, gid);
  }

  /** One global transaction with its branch timeline. */
  get(gid: string): Promise<TxnView> {
    return this.#http.get<TxnView>(`${BASE}/globals/${encodeURIComponent(gid)}`);
  }
}

/** How a prepared message reaches the coordinator (the client's RPC port or HTTP). */
type CoordinatorCall = <T>(
  method: string,
  route: string,
  body: object,
  retry: boolean,
  httpBody?: object,
) => Promise<T>;

/**
 * A prepared two-phase message: run its local transaction, and the message follows
 * ({@link run}); or write its barrier row in a transaction of your own ({@link join}) and
 * {@link submit} once that transaction committed.
 */
export class PreparedMessage {
  readonly #call: CoordinatorCall;
  /** The global id (the barrier row's key and the check-back's argument). */
  readonly gid: string;

  /** Made by {@link TxnClient.message}. */
  constructor(call: CoordinatorCall, gid: string) {
    this.#call = call;
    this.gid = gid;
  }

  /**
   * Runs `fn` in a local transaction on `db` with the message's barrier row, then submits:
   * the message is published exactly when the transaction committed. `fn` throwing rolls
   * back and aborts the message. A crash between commit and submit, or a COMMIT whose
   * outcome is unknown, is settled by the coordinator's check-back ({@link checkPrepared} on
   * the same `db`).
   */
  async run<T>(db: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let value: T | undefined;
    let ran = false;
    try {
      value = await barrier(db, { gid: this.gid, branch: MSG_BRANCH, op: 'msg' }, async (c) => {
        const v = await fn(c);
        ran = true;
        return v;
      });
    } catch (err) {
      // `fn` failed (or the barrier refused): rolled back for sure, so the message goes.
      // Its COMMIT failed: the outcome is unknown (a lost reply may hide a commit), so the
      // check-back decides from the barrier row, as after a crash.
      if (!ran) await this.abort().catch(() => undefined);
      throw err;
    }
    await this.submit();
    return value as T;
  }

  /**
   * Writes the message's barrier row in `client`'s open transaction (BEGIN first): the
   * message is published if and only if that transaction commits. Call {@link submit} after
   * its COMMIT (a crash before is settled by the check-back, {@link checkPrepared} on the
   * same database) and {@link abort} after a rollback. Lets one local transaction hold the
   * message and other work with a barrier of its own (a TCC confirm, a saga action).
   * Throws PEAK_TXN_STATE when the message was already decided (the check-back rolled it
   * back): roll the transaction back then.
   */
  async join(client: pg.ClientBase): Promise<void> {
    const res = await client.query(
      `INSERT INTO ${BARRIER_TABLE} (gid, branch, op, reason) VALUES ($1, $2, 'msg', 'msg')
       ON CONFLICT DO NOTHING`,
      [this.gid, MSG_BRANCH],
    );
    if ((res.rowCount ?? 0) === 0) {
      throw new PeakError(
        ErrorCodes.TXN_STATE,
        `global transaction ${this.gid}: its message was already decided (rolled back by the check-back, or committed before); roll the local transaction back`,
        { details: { gid: this.gid } },
      );
    }
  }

  /** Its local transaction committed: the coordinator publishes the message (idempotent). */
  async submit(): Promise<TxnOutcome> {
    return this.#call<TxnOutcome>(
      'msgSubmit',
      `${BASE}/msgs/${encodeURIComponent(this.gid)}/submit`,
      { gid: this.gid },
      true,
      {},
    );
  }

  /** Its local transaction rolled back (or never ran): the coordinator drops the message. */
  async abort(): Promise<TxnOutcome> {
    return this.#call<TxnOutcome>(
      'msgAbort',
      `${BASE}/msgs/${encodeURIComponent(this.gid)}/abort`,
      { gid: this.gid },
      true,
      {},
    );
  }
}
