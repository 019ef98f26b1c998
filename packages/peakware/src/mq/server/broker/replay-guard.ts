/**
 * Replay protection for signed messages: each signed message's nonce is claimed once per
 * topic in PostgreSQL (`peak.mq_signed_nonces`, shared by every broker node) for as long
 * as its signing time is accepted; a nonce claimed before, or twice in one batch, is a
 * replay (PEAK_MQ_REPLAYED) and the whole batch is refused. Expired claims are swept as
 * claims are made.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../../core/errors.js';

/** Claims signed messages' nonces; refuses one seen before. */
export class ReplayGuard {
  readonly #pool: pg.Pool;
  readonly #keepMs: number;
  #lastSweep = 0;

  /** Claims are kept `keepMs` (twice the signing window: a signing time is accepted ± it). */
  constructor(pool: pg.Pool, keepMs: number) {
    this.#pool = pool;
    this.#keepMs = keepMs;
  }

  /** Claims `nonces` of `topic`, or throws PEAK_MQ_REPLAYED naming the first seen before. */
  async claim(topic: string, nonces: readonly string[], now: number): Promise<void> {
    if (nonces.length === 0) return;
    const seen = new Set<string>();
    for (const [i, n] of nonces.entries()) {
      if (seen.has(n)) throw replayed(topic, n, i);
      seen.add(n);
    }
    if (now - this.#lastSweep > 60_000) {
      this.#lastSweep = now;
      await this.#pool.query('DELETE FROM peak.mq_signed_nonces WHERE expires_at < now()');
    }
    const { rows } = await this.#pool.query<{ nonce: string }>(
      `INSERT INTO peak.mq_signed_nonces (topic, nonce, expires_at)
       SELECT $1, n, to_timestamp($3 / 1000.0) FROM unnest($2::text[]) AS n
       ON CONFLICT DO NOTHING RETURNING nonce`,
      [topic, nonces, now + this.#keepMs],
    );
    if (rows.length === nonces.length) return;
    const fresh = new Set(rows.map((r) => r.nonce));
    const i = nonces.findIndex((n) => !fresh.has(n));
    // The fresh ones of a refused batch are kept: a batch is signed once, sent whole.
    throw replayed(topic, nonces[i]!, i);
  }
}

function replayed(topic: string, nonce: string, index: number): PeakError {
  return new PeakError(
    ErrorCodes.MQ_REPLAYED,
    `messages[${index}] of topic '${topic}' was sent before (nonce ${nonce}): a replayed signed message; the whole batch was refused`,
    { details: { input: `messages[${index}].nonce`, topic, reason: 'seen' } },
  );
}
