/**
 * The coordinator's own signed caller identity (app `peak-txn`): the node issues it to
 * itself (no credential, no HTTP: the host's `issueIdentity`), renews it at half its life
 * and keeps the one in hand through failed renewals until it expires, so providers that
 * require verified callers accept the coordinator's branch calls and their authority rules
 * can name it (`origins: ['peak-txn']`).
 */
import { backoffDelay } from '../../core/backoff.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { IdentitySource } from '../../rpc/caller-identity.js';

/** The app the coordinator's branch calls are verified as. */
export const COORDINATOR_APP = 'peak-txn';

/** Issues a signed identity of `app` (the host's IdentityIssuer). */
export type IssueIdentity = (app: string) => Promise<{ token: string; expiresAt: number }>;

/** A self-issued, self-renewing identity (see the header). */
export class CoordinatorIdentity implements IdentitySource {
  readonly #issue: IssueIdentity;
  readonly #logger: Logger;
  readonly #now: () => number;
  #issued: { token: string; expiresAt: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;

  constructor(issue: IssueIdentity, logger: Logger, now: () => number = Date.now) {
    this.#issue = issue;
    this.#logger = logger;
    this.#now = now;
  }

  /** Issues the first identity and keeps renewing it. */
  async start(): Promise<void> {
    await this.#renew();
  }

  current(): string | undefined {
    const issued = this.#issued;
    if (issued === undefined || issued.expiresAt <= this.#now()) return undefined;
    return issued.token;
  }

  /** Stops renewing. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  async #renew(): Promise<void> {
    this.#issued = await this.#issue(COORDINATOR_APP);
    this.#failures = 0;
    this.#schedule(Math.max(1000, (this.#issued.expiresAt - this.#now()) / 2));
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#renew().catch((err: unknown) => {
        this.#failures++;
        this.#logger.warn(
          { err: errorMessage(err), expiresAt: this.#issued?.expiresAt },
          'coordinator identity renewal failed; keeping the identity in hand until it expires',
        );
        this.#schedule(backoffDelay(this.#failures - 1, { initialMs: 500, maxMs: 30_000 }));
      });
    }, ms);
    this.#timer.unref();
  }
}
