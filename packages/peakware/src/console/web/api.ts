/**
 * The console's calls to the control plane: the typed admin sections of `peakware/admin`
 * over a fetch-based transport (same origin, the session cookie, the CSRF token on every
 * change), so no page writes a URL. Errors become {@link ApiError}s with the server's code,
 * message and details (a config publish's problems, for instance).
 */
import type { AdminTransport } from '../../admin/admin-transport.js';
import { AlertsAdmin } from '../../admin/alerts-admin.js';
import { ConfigAdmin } from '../../admin/config-admin.js';
import { ConsoleAdmin } from '../../admin/console-admin.js';
import { DrillAdmin } from '../../admin/drill-admin.js';
import { GatewayAdmin } from '../../admin/gateway-admin.js';
import { GuardAdmin } from '../../admin/guard-admin.js';
import { MqAdmin } from '../../admin/mq-admin.js';
import { RegistryAdmin } from '../../admin/registry-admin.js';
import { StressAdmin } from '../../admin/stress-admin.js';
import { SystemAdmin } from '../../admin/system-admin.js';
import { TelemetryAdmin } from '../../admin/telemetry-admin.js';
import { TxnAdmin } from '../../admin/txn-admin.js';
import type { QueryParams, RequestOptions } from '../../core/control-plane-client.js';

/** An error answer of the control plane. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let csrfToken: string | undefined;

/** Sets the CSRF token sent with every change (from the session). */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when an answer says the session is gone (401), so the app shows the login. */
let onUnauthenticated: () => void = () => undefined;
export function whenLoggedOut(listener: () => void): void {
  onUnauthenticated = listener;
}

function withQuery(path: string, query: QueryParams | undefined): string {
  if (query === undefined) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) params.append(key, v);
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (method !== 'GET' && csrfToken !== undefined) headers['x-peak-csrf'] = csrfToken;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(withQuery(path, options.query), {
    method,
    headers,
    credentials: 'same-origin',
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  const json = text === '' ? undefined : (JSON.parse(text) as unknown);
  if (res.ok || options.acceptStatus?.includes(res.status)) return json as T;
  const error = (json as { error?: { code: string; message: string; details?: object } })?.error;
  if (res.status === 401 && !path.endsWith('/console/session')) onUnauthenticated();
  throw new ApiError(
    res.status,
    error?.code ?? 'PEAK_HTTP',
    error?.message ?? `${method} ${path}: HTTP ${res.status}`,
    (error?.details ?? {}) as Record<string, unknown>,
  );
}

const transport: AdminTransport = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options) => request('POST', path, { ...options, body }),
  put: (path, body, options) => request('PUT', path, { ...options, body }),
  delete: (path, options) => request('DELETE', path, options),
};

/** The admin sections, as the console calls them. */
export const api = {
  config: new ConfigAdmin(transport),
  mq: new MqAdmin(transport),
  telemetry: new TelemetryAdmin(transport),
  alerts: new AlertsAdmin(transport),
  registry: new RegistryAdmin(transport),
  guard: new GuardAdmin(transport),
  system: new SystemAdmin(transport),
  console: new ConsoleAdmin(transport),
  txn: new TxnAdmin(transport),
  gateway: new GatewayAdmin(transport),
  stress: new StressAdmin(transport),
  drill: new DrillAdmin(transport),
};

/** An error's text for a person. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}
