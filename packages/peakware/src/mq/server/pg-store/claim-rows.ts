/**
 * Claim rows (`mq_claims`): one row per fresh claim of a normal topic, covering the offsets
 * `[first_offset, first_offset + span)` it handed out (`delivered`, relative to
 * `first_offset`, lists them when a tag filter skipped some; NULL means all), and the ones
 * acked so far (`acked`, relative). The SQL fragments every part of the store shares.
 */

/** Most offsets one claim row spans; a batch trace row's offsets lie within one claim. */
export const MAX_CLAIM_SPAN = 10_000;

/** SQL: how many offsets of claim row `c` are handed out and not acked yet. */
export function CLAIM_UNACKED_SQL(c: string): string {
  return `(coalesce(cardinality(${c}.delivered), ${c}.span) - cardinality(${c}.acked))`;
}

/**
 * SQL: whether offset `o` (a bigint expression) is one claim row `c` handed out and has
 * not seen acked (the row's own group, topic and queue are the caller's to match).
 */
export function CLAIM_HOLDS_SQL(c: string, o: string): string {
  return `(${o} >= ${c}.first_offset AND ${o} < ${c}.first_offset + ${c}.span
     AND (${c}.delivered IS NULL OR (${o} - ${c}.first_offset)::int = ANY (${c}.delivered))
     AND NOT (${o} - ${c}.first_offset)::int = ANY (${c}.acked))`;
}

/**
 * SQL ($1 group, $2 topic, $3 queue): deletes the queue's timed-out claim rows (locked in
 * offset order, as acks lock them) and turns their unacked offsets into delivery rows,
 * visible now, that remember the attempt (its consumer and time) like any first delivery
 * that timed out. Messages retention dropped meanwhile are left out: nothing to redeliver.
 */
export const EXPAND_EXPIRED_CLAIMS_SQL = `
  WITH due AS (
    SELECT first_offset FROM peak.mq_claims
     WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND visible_at <= now()
     ORDER BY first_offset FOR UPDATE),
  expired AS (
    DELETE FROM peak.mq_claims
     WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND first_offset IN (SELECT first_offset FROM due)
    RETURNING first_offset, span, delivered, acked, consumer_id, delivered_at),
  offs AS (
    SELECT e.first_offset + r AS o, e.consumer_id, e.delivered_at
      FROM expired e, generate_series(0, e.span - 1) AS r
     WHERE (e.delivered IS NULL OR r = ANY (e.delivered)) AND NOT r = ANY (e.acked))
  INSERT INTO peak.mq_deliveries
    (grp, topic, queue_id, queue_offset, msg_id, msg_group, visible_at, deliveries, consumer_id, delivered_at)
  SELECT $1, $2, $3, offs.o, m.msg_id, m.msg_group, now(), 1, offs.consumer_id, offs.delivered_at
    FROM offs JOIN peak.mq_messages m ON m.topic = $2 AND m.queue_id = $3 AND m.queue_offset = offs.o
  ON CONFLICT DO NOTHING`;

/**
 * SQL ($1 group, $2 topic, $3 queue, $4 offset): takes one offset out of the claim row
 * that holds it and gives it a delivery row of its own with the same attempt (visible at,
 * consumer, delivered at), so a nack can handle it like any delivery. Returns the claim
 * row's `first_offset`; no row when no claim holds the offset.
 */
export const DETACH_FROM_CLAIM_SQL = `
  WITH hit AS (
    UPDATE peak.mq_claims c SET acked = c.acked || ($4::bigint - c.first_offset)::int
     WHERE c.grp = $1 AND c.topic = $2 AND c.queue_id = $3 AND c.first_offset <= $4::bigint
       AND ${CLAIM_HOLDS_SQL('c', '$4::bigint')}
    RETURNING c.first_offset, c.visible_at, c.consumer_id, c.delivered_at),
  ins AS (
    INSERT INTO peak.mq_deliveries
      (grp, topic, queue_id, queue_offset, msg_id, msg_group, visible_at, deliveries, consumer_id, delivered_at)
    SELECT $1, $2, $3, $4, m.msg_id, m.msg_group, hit.visible_at, 1, hit.consumer_id, hit.delivered_at
      FROM hit JOIN peak.mq_messages m ON m.topic = $2 AND m.queue_id = $3 AND m.queue_offset = $4::bigint
    ON CONFLICT DO NOTHING)
  SELECT first_offset::text FROM hit`;

/**
 * SQL ($1 group, $2 topic, $3 queue, $4 first offset): deletes that claim row when nothing
 * of it is left unacked.
 */
export const DROP_SETTLED_CLAIM_SQL = `
  DELETE FROM peak.mq_claims c
   WHERE c.grp = $1 AND c.topic = $2 AND c.queue_id = $3 AND c.first_offset = $4::bigint
     AND ${CLAIM_UNACKED_SQL('c')} <= 0`;
