/**
 * Retention by daily partitions: the message and trace tables are partitioned by day;
 * upkeep creates the coming days' partitions and drops whole expired ones.
 *
 * The partitions are insert-only (never updated, dropped whole after retention), so they
 * are made with `autovacuum_vacuum_insert_threshold = -1`: no vacuum because rows were
 * inserted. Such a vacuum only sets visibility bits the broker's reads do not use, and
 * it scans every page written since the last one. Autoanalyze stays, and PostgreSQL's
 * anti-wraparound vacuum runs whatever the setting.
 *
 * Each partition's GIN index on message keys is set to `fastupdate = off`. With GIN's
 * default, inserted keys go to a pending list that is merged into the index in one go when
 * it passes `gin_pending_list_limit` (4 MB), by the insert that passes it or by an
 * autoanalyze, and the merge (tens of thousands of keys) holds up every insert into that
 * partition for up to a second: the shop's capacity run failed its 2 100 and 2 500/s steps
 * on one such second each time (BENCHMARKS.md, shop, session 45). Off, each key goes into
 * the index at once, a little more work per message and no stalls.
 *
 * Autoanalyze of a message partition gathers statistics only for the columns the broker's
 * reads are planned on (topic, queue, offset, id, tag, stored_at): the others (body, keys,
 * properties, ...) are set to `STATISTICS 0`. Over a day's partition of 187 000 shop events
 * an ANALYZE took 290 ms of CPU with every column and 81 ms without those, a burst the
 * shop's busiest steps feel (BENCHMARKS.md, shop, session 45).
 */
import type pg from 'pg';
import type { Logger } from '../../../core/logger.js';

/** The storage parameter of every daily partition (see the module comment). */
const NO_INSERT_VACUUM = 'autovacuum_vacuum_insert_threshold=-1';
/** The storage parameter of every partition's keys index (see the module comment). */
const NO_PENDING_LIST = 'fastupdate=off';
/** Message columns no read of the broker is planned on: no statistics (see the module comment). */
const UNPLANNED_COLUMNS = [
  'body',
  'keys',
  'props',
  'born_at',
  'msg_group',
  'reconsume',
  'origin_topic',
];

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
      if (table === 'mq_messages') {
        await this.#keysWithoutPendingList();
        await this.#statisticsOnlyWherePlanned();
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

  /**
   * Sets `fastupdate = off` on every partition's keys index that lacks it (new partitions,
   * and once those of earlier versions), then merges what their pending list still holds.
   * A partitioned index takes no storage parameters, so each partition's is set here.
   */
  async #keysWithoutPendingList(): Promise<void> {
    const lacking = await this.#partitionsOf(
      'peak.mq_messages_keys',
      'NOT coalesce($1 = ANY(c.reloptions), false)',
      NO_PENDING_LIST,
    );
    for (const name of lacking) {
      await this.#pool.query(`ALTER INDEX ${name} SET (${NO_PENDING_LIST})`);
      await this.#pool.query('SELECT gin_clean_pending_list($1::regclass)', [name]);
    }
  }

  /** Sets `STATISTICS 0` on the unplanned columns of every message partition that lacks it. */
  async #statisticsOnlyWherePlanned(): Promise<void> {
    const lacking = await this.#partitionsOf(
      'peak.mq_messages',
      `EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = ANY ($1::text[])
                  AND coalesce(a.attstattarget, -1) <> 0)`,
      UNPLANNED_COLUMNS,
    );
    const set = UNPLANNED_COLUMNS.map((c) => `ALTER COLUMN ${c} SET STATISTICS 0`).join(', ');
    for (const name of lacking) await this.#pool.query(`ALTER TABLE ${name} ${set}`);
  }

  /**
   * The partitions (tables or indexes, quoted and schema-qualified) of `parent` for which
   * `condition` holds: an SQL condition on the partition's `pg_class` row `c`, with `$1`.
   */
  async #partitionsOf(parent: string, condition: string, param: unknown): Promise<string[]> {
    const { rows } = await this.#pool.query<{ name: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = $2::regclass AND ${condition}`,
      [param, parent],
    );
    return rows.map((r) => r.name);
  }
}
