/**
 * `AppIdentity`: the signed identity an app's RPC calls carry. It trades the app's
 * credential (`token`, default `PEAK_CREDENTIAL`) for a short-lived identity at the
 * control plane (`POST /api/v1/identity`), and renews it when half its life has passed,
 * retrying with backoff when the control plane does not answer; the identity in hand stays
 * in use until it expires, so a control-plane outage shorter than that changes nothing. It
 * is the `IdentitySource` of `RpcClientOptions.identity`: `current()` is a field read.
 */
import { type BackoffOptions, backoffDelay } from '../core/backoff.js';
import {
  ControlPlaneClient,
  type ControlPlaneOptions,
  serversOf,
} from '../core/control-plane-client.js';
import { ErrorCodes, errorMessage, isPeakError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { IdentitySource } from '../rpc/caller-identity.js';

/** Options of {@link AppIdentity}. */
export interface AppIdentityOptions extends ControlPlaneOptions {
  /** How long each identity is asked to live, seconds (30-600). Default 600. */
  ttlSeconds?: number;
  /** Waits between failed renewals. Default 500 ms doubling to 30 s. */
  backoff?: BackoffOptions;
  /** The clock, epoch ms. */
  now?: () => number;
  logger?: Logger;
}

interface Issued {
  token: string;
  app: string;
  expiresAt: number;
}

/** An app's signed identity, kept fresh (see the header). */
export class AppIdentity implements IdentitySource {
  readonly #http: ControlPlaneClient;
  readonly #ttlSeconds: number | undefined;
  readonly #backoff: BackoffOptions;
  readonly #now: () => number;
  readonly #logger: Logger;
  #issued: Issued | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;

  constructor(options: AppIdentityOptions) {
    this.#http = new ControlPlaneClient({
      servers: serversOf(options, 'AppIdentity'),
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: 5000,
      serverName: 'the control plane (identity)',
    });
    this.#ttlSeconds = options.ttlSeconds;
    this.#backoff = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger ?? silentLogger();
  }

  /**
   * Fetches the first identity and keeps renewing it. Throws the control plane's error
   * (PEAK_UNAUTHENTICATED or PEAK_FORBIDDEN for a credential it refuses, or
   * PEAK_SERVER_UNREACHABLE), so a service that cannot prove who it is fails at start.
   */
  async start(): Promise<void> {
    await this.renew();
  }

  /** The app the identity names (after `start`). */
  get app(): string | undefined {
    return this.#issued?.app;
  }

  /** When the identity in hand expires, epoch ms (after `start`). */
  get expiresAt(): number | undefined {
    return this.#issued?.expiresAt;
  }

  current(): string | undefined {
    const issued = this.#issued;
    if (issued === undefined || issued.expiresAt <= this.#now()) return undefined;
    return issued.token;
  }

  /** Fetches a new identity now (and schedules the next renewal). */
  async renew(): Promise<void> {
    const issued = await this.#http.post<Issued>(
      '/api/v1/identity',
      this.#ttlSeconds === undefined ? {} : { ttlSeconds: this.#ttlSeconds },
      { retry: true },
    );
    this.#issued = issued;
    this.#failures = 0;
    this.#schedule(Math.max(1000, (issued.expiresAt - this.#now()) / 2));
  }

  /** Stops renewing. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        this.#failures++;
        const refused =
          isPeakError(err, ErrorCodes.UNAUTHENTICATED) || isPeakError(err, ErrorCodes.FORBIDDEN);
        this.#logger.warn(
          { err: errorMessage(err), expiresAt: this.#issued?.expiresAt },
          refused
            ? 'identity renewal refused: the credential no longer works; calls fail once the identity expires'
            : 'identity renewal failed; keeping the identity in hand until it expires',
        );
        this.#schedule(backoffDelay(this.#failures - 1, this.#backoff));
      });
    }, ms);
    this.#timer.unref();
  }
}
