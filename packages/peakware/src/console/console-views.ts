/**
 * The console API's answers as they travel (`/api/v1/console/*`): the session, the audit
 * trail and the metrics history. Declared once here so the server half, the typed admin
 * client (`admin.console`) and the browser app name the same types.
 */

/** What a console session may do: `admin` changes anything, `operator` config, rules and plans, `viewer` only reads. */
export type ConsoleRole = 'admin' | 'operator' | 'viewer';

/** What logging in takes: an operator token (admin, operator or viewer) exchanged for a session. */
export interface LoginRequest {
  /** The token: the admin token (file admin-token in the server's data folder) or another operator token. */
  token: string;
  /** Who is logging in, for the audit (default `admin`). */
  name?: string;
  /** A session that may only read, whatever the credential allows. */
  readOnly?: boolean;
}

/** The session a request's cookie names. */
export interface SessionView {
  /** Who, as the audit names the session's calls: `console:<name>`. */
  who: string;
  name: string;
  role: ConsoleRole;
  /** The credential it was made from: `admin-token`. */
  credential: string;
  /** The address it was made from. */
  from: string;
  createdAt: string;
  expiresAt: string;
  /** Send as header `x-peak-csrf` on every change made with this session. */
  csrfToken: string;
}

/** One admitted admin call, as the audit keeps it. */
export interface AuditEntry {
  id: number;
  at: string;
  /** `admin-token`, or `console:<name>`. */
  who: string;
  /** The credential: `admin-token` or `console-session`. */
  via: string;
  role: string;
  /** The caller's address. */
  from: string;
  userAgent: string;
  method: string;
  /** The route's pattern, e.g. `/api/v1/config/items/:app/:group/:key`. */
  route: string;
  url: string;
  /** The HTTP status it ended with. */
  status: number;
}

/** How metrics history is grouped: everything together, per service, or per resource. */
export type MetricsGrouping = 'total' | 'service' | 'resource';

/** What a metrics history query takes. */
export interface MetricsHistoryQuery {
  /** First bucket, epoch ms. Default 5 minutes before `to`. */
  from?: number;
  /** End, epoch ms. Default now (the newest two seconds are left out: still arriving). */
  to?: number;
  /** Default `total`. */
  by?: MetricsGrouping;
  service?: string;
  resource?: string;
  /** Bucket width in seconds (1, 60 or 3600). Default: the finest kept that far back. */
  step?: 1 | 60 | 3600;
}

/** One series: per bucket, rates per second and latencies. */
export interface MetricsSeries {
  /** The service (empty when grouped `total`). */
  service: string;
  /** The resource (empty unless grouped `resource`). */
  resource: string;
  /** Bucket starts, epoch ms. */
  t: number[];
  /** Completed calls per second. */
  calls: number[];
  /** Failed calls per second. */
  errors: number[];
  /** Calls refused by guard rules per second. */
  blocked: number[];
  /** Mean RT, ms (null in a bucket without calls). */
  rtAvgMs: (number | null)[];
  /** The highest RT p99 any instance reported in the bucket, ms (null when none did). */
  p99Ms: (number | null)[];
  /** Instances that reported in the bucket. */
  instances: number[];
}

/** A metrics history answer. */
export interface MetricsHistory {
  /** The bucket width used, seconds. */
  stepSeconds: number;
  fromMs: number;
  toMs: number;
  series: MetricsSeries[];
}
