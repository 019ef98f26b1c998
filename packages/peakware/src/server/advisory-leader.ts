/**
 * One leader across every control-plane node on one PostgreSQL for work that must run
 * once (the alert evaluator, the guard's cluster token server): the node that holds a
 * session-level advisory lock on a dedicated connection leads, the others wait. The lock lives as long as that session, so a node that stops releases it, and a
 * node killed outright (kill -9, lost host) loses it as soon as PostgreSQL sees its
 * connection close; the next {@link AdvisoryLeader.holds} on another node takes it.
 */
import type pg from 'pg';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** The advisory lock key of the telemetry alert evaluator ('peakalrt' as 8 bytes). */
export const ALERT_EVALUATOR_LOCK_KEY = 0x7065616b616c7274n;

/** The advisory lock key of the scaling evaluator and release runner ('peakscal' as 8 bytes). */
export const SCALE_EVALUATOR_LOCK_KEY = 0x7065616b7363616cn;

/** The advisory lock key of the guard's cluster token server ('peakgtok' as 8 bytes). */
export const GUARD_TOKEN_SERVER_LOCK_KEY = 0x7065616b67746f6bn;

/** Leadership through `pg_try_advisory_lock` held on one dedicated pooled connection. */
export class AdvisoryLeader {
  readonly #pool: pg.Pool;
  readonly #key: bigint;
  readonly #logger: Logger;
  #client: pg.PoolClient | undefined;
  #lost: Error | undefined;
  #held = false;
  #closed = false;
  #checking: Promise<boolean> | undefined;

  readonly #sessionName: string | undefined;

  /**
   * `sessionName` (e.g. the node id) becomes the lock session's `application_name`, so
   * other nodes can find who leads with {@link AdvisoryLeader.holderName}.
   */
  constructor(pool: pg.Pool, key: bigint, logger: Logger, sessionName?: string) {
    this.#pool = pool;
    this.#key = key;
    this.#logger = logger;
    this.#sessionName = sessionName;
  }

  /**
   * The `sessionName` of the node holding the lock `key` now, or undefined when none holds
   * it (or the holder gave no name).
   */
  static async holderName(pool: pg.Pool, key: bigint): Promise<string | undefined> {
    // A bigint advisory lock shows in pg_locks as classid (high 32 bits), objid (low 32
    // bits) and objsubid 1.
    const res = await pool.query<{ name: string }>(
      `SELECT a.application_name AS name
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid`,
      [(key >> 32n).toString(), (key & 0xffffffffn).toString()],
    );
    const name = res.rows[0]?.name;
    return name === undefined || name === '' ? undefined : name;
  }

  /** Whether this node held the lock at the last check. */
  get leader(): boolean {
    return this.#held;
  }

  /**
   * Checks the session is alive and the lock held, taking the lock when free. False when
   * another node holds it or the database cannot be reached (tried again next call).
   * Concurrent calls share one check (two at once would open two sessions).
   */
  holds(): Promise<boolean> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #check(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      if (this.#lost !== undefined) this.#drop(this.#lost);
      if (this.#client === undefined) {
        const client = await this.#pool.connect();
        client.on('error', (err) => {
          this.#lost = err;
        });
        this.#client = client;
        if (this.#sessionName !== undefined) {
          await client.query("SELECT set_config('application_name', $1, false)", [
            this.#sessionName,
          ]);
        }
      }
      if (this.#held) {
        // A round trip on the session proves it (and so the lock) is still there.
        await this.#client.query('SELECT 1');
        return true;
      }
      const res = await this.#client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock($1::bigint) AS ok',
        [this.#key.toString()],
      );
      this.#held = res.rows[0]?.ok === true;
      if (this.#held) this.#logger.info({ lock: this.#key.toString(16) }, 'this node now leads');
      return this.#held;
    } catch (err) {
      if (this.#held) {
        this.#logger.warn(
          { lock: this.#key.toString(16), err: errorMessage(err) },
          'lost the leader lock',
        );
      }
      this.#drop(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
  }

  #drop(err: Error): void {
    const client = this.#client;
    this.#client = undefined;
    this.#held = false;
    this.#lost = undefined;
    // Destroying the session (release with an error) also ends any lock it held.
    client?.release(err);
  }

  /** Gives the lock up (if held) and ends its session; later calls return false. */
  async close(): Promise<void> {
    this.#closed = true;
    // A check in flight may be opening the session; let it finish first.
    await this.#checking;
    const client = this.#client;
    this.#client = undefined;
    if (client === undefined) return;
    if (this.#held && this.#lost === undefined) {
      await client
        .query('SELECT pg_advisory_unlock($1::bigint)', [this.#key.toString()])
        .catch(() => undefined);
    }
    this.#held = false;
    // Ended, not pooled: the session carries this leader's application_name.
    client.release(this.#lost ?? true);
  }
}
