/**
 * `peak server`'s settings from the environment, read and checked once at start, in one
 * table: subsystem route modules get them through `ApiContext.settings` and never read
 * `process.env` themselves. A malformed value stops the start with one line naming the
 * variable, what it takes and what it got (a typo must not silently become the default).
 *
 * | variable | takes | default |
 * |---|---|---|
 * | `PEAK_POSTGRES_POOL_MAX` | integer 8–500 (five sessions stay held by listeners and leader locks) | 25 |
 * | `PEAK_MQ_RETENTION_HOURS` | hours > 0 messages are kept for replay | 72 |
 * | `PEAK_MQ_SESSION_MS` | ms ≥ 1000 a silent consumer keeps its queues | 20 000 |
 * | `PEAK_MQ_HALF_CHECK_AFTER_MS` | ms ≥ 0 before an unresolved half message is checked back | 6 000 |
 * | `PEAK_MQ_HALF_CHECK_INTERVAL_MS` | ms ≥ 100 between check-backs | 30 000 |
 * | `PEAK_MQ_MQTT_PORT` | TCP port 0–65535: start the MQTT bridge | unset (off) |
 * | `PEAK_MQ_MQTT_HOST` | the MQTT bridge's listen address | 127.0.0.1 |
 * | `PEAK_TELEMETRY_RETENTION_HOURS` | hours > 0 spans are kept | 72 |
 * | `PEAK_TELEMETRY_METRICS_RETENTION_MINUTES` | minutes > 0 pushed metrics are kept | 60 |
 * | `PEAK_TELEMETRY_ALERT_INTERVAL_MS` | ms ≥ 50 between alert evaluations | 10 000 |
 * | `PEAK_TELEMETRY_ALERT_EVALUATOR` | `on` / `off`: take part in evaluating alerts | on |
 * | `PEAK_GUARD_TOKEN_SERVER` | `on` / `off`: take part in leading the cluster token server | on |
 */
import { UsageError } from '../core/errors.js';

/** Everything `peak server` reads from its environment. */
export interface ServerSettings {
  postgresPoolMax: number;
  mq: {
    retentionMs: number;
    sessionMs: number;
    halfCheckAfterMs: number;
    halfCheckIntervalMs: number;
    /** The MQTT bridge's listen address, or undefined when the bridge is off. */
    mqtt: { port: number; host: string } | undefined;
  };
  telemetry: {
    spanRetentionMs: number;
    metricsRetentionMs: number;
    alertIntervalMs: number;
    alertEvaluator: boolean;
  };
  guard: { tokenServer: boolean };
}

type Env = Readonly<Record<string, string | undefined>>;

function number(
  env: Env,
  name: string,
  fallback: number,
  check: { min: number; max?: number; integer?: boolean; minExclusive?: boolean; what: string },
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  const ok =
    Number.isFinite(n) &&
    (check.minExclusive === true ? n > check.min : n >= check.min) &&
    (check.max === undefined || n <= check.max) &&
    (check.integer !== true || Number.isInteger(n));
  if (!ok) throw new UsageError(`${name} must be ${check.what}, got '${raw}'`);
  return n;
}

function onOff(env: Env, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '' || raw === 'on') return true;
  if (raw === 'off') return false;
  throw new UsageError(`${name} must be 'on' or 'off', got '${raw}'`);
}

/** Reads and checks the settings; throws a UsageError naming the first malformed variable. */
export function serverSettingsFromEnv(env: Env = process.env): ServerSettings {
  const mqttPort = number(env, 'PEAK_MQ_MQTT_PORT', -1, {
    min: 0,
    max: 65535,
    integer: true,
    what: 'a TCP port from 0 to 65535',
  });
  return {
    postgresPoolMax: number(env, 'PEAK_POSTGRES_POOL_MAX', 25, {
      min: 8,
      max: 500,
      integer: true,
      what: 'an integer from 8 to 500 (five sessions are held for listeners and leader locks)',
    }),
    mq: {
      retentionMs:
        number(env, 'PEAK_MQ_RETENTION_HOURS', 72, {
          min: 0,
          minExclusive: true,
          what: 'a number of hours above 0',
        }) * 3_600_000,
      sessionMs: number(env, 'PEAK_MQ_SESSION_MS', 20_000, {
        min: 1000,
        what: 'a number of ms of at least 1000',
      }),
      halfCheckAfterMs: number(env, 'PEAK_MQ_HALF_CHECK_AFTER_MS', 6000, {
        min: 0,
        what: 'a number of ms of at least 0',
      }),
      halfCheckIntervalMs: number(env, 'PEAK_MQ_HALF_CHECK_INTERVAL_MS', 30_000, {
        min: 100,
        what: 'a number of ms of at least 100',
      }),
      mqtt:
        mqttPort < 0 ? undefined : { port: mqttPort, host: env.PEAK_MQ_MQTT_HOST || '127.0.0.1' },
    },
    telemetry: {
      spanRetentionMs:
        number(env, 'PEAK_TELEMETRY_RETENTION_HOURS', 72, {
          min: 0,
          minExclusive: true,
          what: 'a number of hours above 0',
        }) * 3_600_000,
      metricsRetentionMs:
        number(env, 'PEAK_TELEMETRY_METRICS_RETENTION_MINUTES', 60, {
          min: 0,
          minExclusive: true,
          what: 'a number of minutes above 0',
        }) * 60_000,
      alertIntervalMs: number(env, 'PEAK_TELEMETRY_ALERT_INTERVAL_MS', 10_000, {
        min: 50,
        what: 'a number of ms of at least 50',
      }),
      alertEvaluator: onOff(env, 'PEAK_TELEMETRY_ALERT_EVALUATOR'),
    },
    guard: { tokenServer: onOff(env, 'PEAK_GUARD_TOKEN_SERVER') },
  };
}
