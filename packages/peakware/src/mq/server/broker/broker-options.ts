/** The broker's options with their defaults (written here once), and its run state. */

/** Options of a `Broker`; defaults are written here once. */
export interface BrokerOptions {
  /** How long messages are kept for query and replay. Default 3 days. */
  retentionMs?: number;
  /** Largest body a new topic accepts, bytes. Default 256 KiB. */
  defaultMaxBodyBytes?: number;
  /** Longest a consumer may go without a receive before its queues move. Default 20 s. */
  sessionMs?: number;
  /** Deliveries a group may hold un-acked per queue. Default 2000. */
  window?: number;
  /**
   * The relay's safety tick, ms: it wakes at due times and on NOTIFY, and this tick only
   * catches rows another node stored before it went away. Default 5000.
   */
  relayIntervalMs?: number;
  /** First check-back of a half message after this long, ms. Default 6 s. */
  halfCheckAfterMs?: number;
  /** Check-backs after the first, this far apart, ms. Default 30 s. */
  halfCheckIntervalMs?: number;
  /** A half message still unresolved after this many checks is rolled back. Default 15. */
  halfMaxChecks?: number;
  /**
   * More PostgreSQL databases topics may be placed on, name → URL (the broker's own pool is
   * `main`). Default none: every topic on the broker's own database.
   */
  databases?: Record<string, string>;
}

/** {@link BrokerOptions} with every default filled in. */
export function resolveBrokerOptions(options: BrokerOptions): Required<BrokerOptions> {
  return {
    retentionMs: options.retentionMs ?? 3 * 86_400_000,
    defaultMaxBodyBytes: options.defaultMaxBodyBytes ?? 256 * 1024,
    sessionMs: options.sessionMs ?? 20_000,
    window: options.window ?? 2000,
    relayIntervalMs: options.relayIntervalMs ?? 5000,
    halfCheckAfterMs: options.halfCheckAfterMs ?? 6000,
    halfCheckIntervalMs: options.halfCheckIntervalMs ?? 30_000,
    halfMaxChecks: options.halfMaxChecks ?? 15,
    databases: options.databases ?? {},
  };
}

/** Where a broker is in its life, read by its loops (relay, long polls, push streams). */
export interface BrokerRunState {
  /** `stop()` was called: loops end. */
  stopped: boolean;
  /** The server is closing: long polls and streams end with what they have. */
  closing: boolean;
}
