/**
 * Retention by daily partitions: the message and trace tables are partitioned by day;
 * upkeep creates the coming days' partitions and drops whole expired ones.
 *
 * The partitions are insert-only (never updated, dropped whole after retention), so they
 * are made with `autovacuum_vacuum_insert_threshold = -1`: no vacuum because rows were
 * inserted. Such a vacuum only sets visibility bits the broker's reads do not use, and
 * it scans every page written since the last one (seen in the shop's capacity run at a
 * p99 stall, which it turned out not to explain alone: BENCHMARKS.md, shop, session 44).
 * Autoanalyze stays, and PostgreSQL's anti-wraparound vacuum runs whatever the setting.
 */
import type pg from 'pg';
import type { Logger } from '../../../core/logger.js';

/** The storage parameter of every daily partition (see the module comment). */
const NO_INSERT_VACUUM = 'autovacuum_vacuum_insert_threshold=-1';

/** Partition upkeep of `mq_messages` and `mq_trace`. */
export class PgPartitions {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  /**
   * Creates the daily partitions of the message and trace tables from yesterday to
   * `aheadDays` ahead, and drops whole partitions that ended more than `retentionMs` ago.
   */
  async maintainPartitions(
    retentionMs: number,
    aheadDays = 2,
  ): Promise<{ created: string[]; dropped: string[] }> {
    const created: string[] = [];
    const dropped: string[] = [];
    const day = 86_400_000;
    const today = Math.floor(Date.now() / day) * day;
    for (const table of ['mq_messages', 'mq_trace']) {
      for (let d = -1; d <= aheadDays; d++) {
        const from = new Date(today + d * day);
        const to = new Date(today + (d + 1) * day);
        const name = `${table}_p${from.toISOString().slice(0, 10).replaceAll('-', '')}`;
        const exists = await this.#pool.query<{ ok: boolean; set: boolean }>(
          `SELECT c.oid IS NOT NULL AS ok, coalesce($2 = ANY(c.reloptions), false) AS set
             FROM (SELECT to_regclass('peak.' || $1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`,
          [name, NO_INSERT_VACUUM],
        );
        if (exists.rows[0]?.ok === true) {
          // A partition made by an earlier version: given the setting once.
          if (exists.rows[0].set !== true)
            await this.#pool.query(`ALTER TABLE peak.${name} SET (${NO_INSERT_VACUUM})`);
          continue;
        }
        try {
          await this.#pool.query(
            `CREATE TABLE peak.${name} PARTITION OF peak.${table} FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}') WITH (${NO_INSERT_VACUUM})`,
          );
          created.push(name);
        } catch (err) {
          // Rows for that day already sit in the DEFAULT partition (the broker was down
          // at midnight); they stay there and are served from it.
          this.#logger.warn({ err, partition: name }, 'mq: could not create partition');
        }
      }
      const { rows } = await this.#pool.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = ('peak.' || $1)::regclass`,
        [table],
      );
      for (const r of rows) {
        const m = /_p(\d{4})(\d{2})(\d{2})$/.exec(r.name);
        if (m === null) continue;
        const end = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + day;
        if (end <= Date.now() - retentionMs) {
          await this.#pool.query(`DROP TABLE peak.${r.name}`);
          dropped.push(r.name);
        }
      }
    }
    return { created, dropped };
  }
}
