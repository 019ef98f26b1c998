/**
 * The transaction coordinator's admin API (`/api/v1/txn`): list global transactions, show
 * one with its branch timeline, resume one now (`retry`, also a parked one) and force-stop a
 * running saga or TCC (its compensations or cancels run). What services call (submit a saga
 * or TCC, run a two-phase message) is `peakware/txn`'s `TxnClient`.
 */
import type { TxnKind, TxnStatus, TxnSummary, TxnView } from '../txn/txn-types.js';
import type { AdminTransport } from './admin-transport.js';

export type { TxnKind, TxnStatus, TxnSummary, TxnView };

const BASE = '/api/v1/txn';
const enc = encodeURIComponent;

/** Filters of {@link TxnAdmin.list}. */
export interface TxnListFilter {
  /** One status, or `active` for every unfinished one. */
  status?: TxnStatus | 'active';
  kind?: TxnKind;
  /** Most rows, 1-1000. Default 50. */
  limit?: number;
}

/** The coordinator's admin calls. */
export class TxnAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** The newest global transactions (newest first). */
  async list(filter: TxnListFilter = {}): Promise<TxnSummary[]> {
    const query: Record<string, string | number> = {};
    if (filter.status !== undefined) query.status = filter.status;
    if (filter.kind !== undefined) query.kind = filter.kind;
    if (filter.limit !== undefined) query.limit = filter.limit;
    return (await this.#http.get<{ globals: TxnSummary[] }>(`${BASE}/globals`, { query })).globals;
  }

  /** One global transaction and its branch timeline (PEAK_TXN_NOT_FOUND when there is none). */
  show(gid: string): Promise<TxnView> {
    return this.#http.get(`${BASE}/globals/${enc(gid)}`);
  }

  /** Resumes an unfinished or parked transaction at the next recovery round (PEAK_TXN_STATE when finished). */
  retry(gid: string): Promise<TxnSummary> {
    return this.#http.post(`${BASE}/globals/${enc(gid)}/retry`, {});
  }

  /** Force-stops a running saga or TCC: it rolls back (PEAK_TXN_STATE when it cannot). */
  stop(gid: string): Promise<TxnSummary> {
    return this.#http.post(`${BASE}/globals/${enc(gid)}/stop`, {});
  }
}
