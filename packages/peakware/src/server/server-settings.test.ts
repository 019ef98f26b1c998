import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPeakError } from '../core/errors.js';
import { serverSettingsFromEnv } from './server-settings.js';

describe('server settings from the environment', () => {
  it('gives the documented defaults for an empty environment', () => {
    const s = serverSettingsFromEnv({});
    assert.equal(s.postgresPoolMax, 25);
    assert.deepEqual(s.mq, {
      retentionMs: 72 * 3_600_000,
      sessionMs: 20_000,
      halfCheckAfterMs: 6000,
      halfCheckIntervalMs: 30_000,
      mqtt: undefined,
    });
    assert.deepEqual(s.telemetry, {
      spanRetentionMs: 72 * 3_600_000,
      metricsRetentionMs: 60 * 60_000,
      alertIntervalMs: 10_000,
      alertEvaluator: true,
    });
    assert.equal(s.guard.tokenServer, true);
  });

  it('reads every variable, in its unit', () => {
    const s = serverSettingsFromEnv({
      PEAK_POSTGRES_POOL_MAX: '40',
      PEAK_MQ_RETENTION_HOURS: '1.5',
      PEAK_MQ_MQTT_PORT: '0',
      PEAK_MQ_MQTT_HOST: '0.0.0.0',
      PEAK_TELEMETRY_METRICS_RETENTION_MINUTES: '5',
      PEAK_TELEMETRY_ALERT_INTERVAL_MS: '2000',
      PEAK_TELEMETRY_ALERT_EVALUATOR: 'off',
      PEAK_GUARD_TOKEN_SERVER: 'off',
    });
    assert.equal(s.postgresPoolMax, 40);
    assert.equal(s.mq.retentionMs, 5_400_000);
    assert.deepEqual(s.mq.mqtt, { port: 0, host: '0.0.0.0' });
    assert.equal(s.telemetry.metricsRetentionMs, 300_000);
    assert.equal(s.telemetry.alertIntervalMs, 2000);
    assert.equal(s.telemetry.alertEvaluator, false);
    assert.equal(s.guard.tokenServer, false);
  });

  it('refuses a malformed value with the variable, what it takes and what it got', () => {
    for (const [name, value, takes] of [
      ['PEAK_POSTGRES_POOL_MAX', '4', /integer from 8 to 500/],
      ['PEAK_MQ_RETENTION_HOURS', '0', /hours above 0/],
      ['PEAK_MQ_SESSION_MS', 'soon', /at least 1000/],
      ['PEAK_MQ_MQTT_PORT', '70000', /TCP port/],
      ['PEAK_TELEMETRY_ALERT_INTERVAL_MS', '10', /at least 50/],
      ['PEAK_TELEMETRY_ALERT_EVALUATOR', 'no', /'on' or 'off'/],
    ] as const) {
      assert.throws(
        () => serverSettingsFromEnv({ [name]: value }),
        (e) =>
          isPeakError(e, 'PEAK_USAGE') &&
          e.message.startsWith(name) &&
          takes.test(e.message) &&
          e.message.includes(`'${value}'`),
        name,
      );
    }
  });
});
