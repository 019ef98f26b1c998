/**
 * Retention by daily partitions: the message and trace tables are partitioned by day;
 * upkeep creates the coming days' partitions and drops whole expired ones.
 */
import type pg from 'pg';
import type { Logger } from '../../../core/logger.js';

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
        const exists = await this.#pool.query(
          "SELECT to_regclass('peak.' || $1) IS NOT NULL AS ok",
          [name],
        );
        if (exists.rows[0]?.ok === true) continue;
        try {
          await this.#pool.query(
            `CREATE TABLE peak.${name} PARTITION OF peak.${table} FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
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
