import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { isPeakError } from '../core/errors.js';
import {
  describeSetting,
  MQTT_SETTINGS,
  RPC_SETTINGS,
  resolveServerSettings,
  SERVER_SETTINGS,
  serverSettingsFromEnv,
  TXN_HTTP_BRANCHES,
} from './server-settings.js';

describe('server settings', () => {
  it('gives the documented defaults when nothing is set', () => {
    assert.deepEqual(serverSettingsFromEnv({}), {});
    const s = resolveServerSettings({});
    assert.equal(s.postgresPoolMax, 25);
    assert.deepEqual(s.mq, {
      retentionMs: 72 * 3_600_000,
      sessionMs: 20_000,
      halfCheckAfterMs: 6000,
      halfCheckIntervalMs: 30_000,
      mqtt: undefined,
      databases: {},
    });
    assert.deepEqual(s.rpc, { port: 0, host: '127.0.0.1' });
    assert.deepEqual(s.telemetry, {
      spanRetentionMs: 72 * 3_600_000,
      metricsRetentionMs: 60 * 60_000,
      alertIntervalMs: 10_000,
      alertEvaluator: true,
    });
    assert.equal(s.guard.tokenServer, true);
  });

  it('reads every variable, in its unit', () => {
    const s = resolveServerSettings(
      serverSettingsFromEnv({
        PEAK_POSTGRES_POOL_MAX: '40',
        PEAK_MQ_RETENTION_HOURS: '1.5',
        PEAK_MQ_MQTT_PORT: '0',
        PEAK_MQ_MQTT_HOST: '0.0.0.0',
        PEAK_RPC_PORT: '7433',
        PEAK_RPC_HOST: '0.0.0.0',
        PEAK_TELEMETRY_METRICS_RETENTION_MINUTES: '5',
        PEAK_TELEMETRY_ALERT_INTERVAL_MS: '2000',
        PEAK_TELEMETRY_ALERT_EVALUATOR: 'off',
        PEAK_GUARD_TOKEN_SERVER: 'off',
      }),
    );
    assert.equal(s.postgresPoolMax, 40);
    assert.equal(s.mq.retentionMs, 5_400_000);
    assert.deepEqual(s.mq.mqtt, { port: 0, host: '0.0.0.0' });
    assert.deepEqual(s.rpc, { port: 7433, host: '0.0.0.0' });
    assert.equal(
      resolveServerSettings(serverSettingsFromEnv({ PEAK_RPC_PORT: 'off' })).rpc,
      undefined,
    );
    assert.equal(resolveServerSettings({ rpc: false }).rpc, undefined);
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
      ['PEAK_RPC_PORT', 'on', /TCP port from 0 to 65535, or 'off'/],
      ['PEAK_RPC_PORT', '70000', /TCP port/],
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

  it('reads the message databases as name=url pairs, and names a bad one', () => {
    const s = resolveServerSettings(
      serverSettingsFromEnv({
        PEAK_MQ_DATABASES: ' mq2=postgres://u:p@db2:5432/peak , mq-3=postgresql://db3/peak ',
      }),
    );
    assert.deepEqual(s.mq.databases, {
      mq2: 'postgres://u:p@db2:5432/peak',
      'mq-3': 'postgresql://db3/peak',
    });
    for (const [value, words] of [
      ['mq2', /name=postgres/],
      ['main=postgres://db/x', /'main' is not a database name.*main is the node's own/],
      ['Mq2=postgres://db/x', /'Mq2' is not a database name/],
      ['mq2=http://db/x', /database 'mq2' needs a postgres:\/\/ URL/],
      ['mq2=postgres://a/x,mq2=postgres://b/x', /names database 'mq2' twice/],
    ] as const) {
      assert.throws(
        () => serverSettingsFromEnv({ PEAK_MQ_DATABASES: value }),
        (e) =>
          isPeakError(e, 'PEAK_USAGE') &&
          e.message.startsWith('PEAK_MQ_DATABASES') &&
          words.test(e.message),
        value,
      );
    }
    assert.throws(
      () => resolveServerSettings({ mq: { databases: { x: 'nope' } } }),
      (e) =>
        isPeakError(e, 'PEAK_USAGE') &&
        /^mq\.databases: database 'x' needs a postgres/.test(e.message),
    );
  });

  it('reads the HTTP branch prefixes as a comma-separated list, and names a bad entry', () => {
    assert.deepEqual(resolveServerSettings({}).txn.httpBranches, []);
    const s = resolveServerSettings(
      serverSettingsFromEnv({
        PEAK_TXN_HTTP_BRANCHES: ' http://pay.internal:8080/txn/ , https://ledger.example ',
      }),
    );
    assert.deepEqual(s.txn.httpBranches, [
      'http://pay.internal:8080/txn/',
      'https://ledger.example/',
    ]);
    assert.throws(
      () =>
        serverSettingsFromEnv({ PEAK_TXN_HTTP_BRANCHES: 'http://a.example/, ftp://b.example/' }),
      (e) =>
        isPeakError(e, 'PEAK_USAGE') &&
        /^PEAK_TXN_HTTP_BRANCHES must be a comma-separated list .*'ftp:\/\/b.example\/' is not an http/.test(
          e.message,
        ),
    );
    assert.throws(
      () => resolveServerSettings({ txn: { httpBranches: ['http://u:p@a.example/'] } }),
      (e) =>
        isPeakError(e, 'PEAK_USAGE') && /^txn\.httpBranches .*carries credentials/.test(e.message),
    );
  });

  it('takes options in ms, leaving the rest at their defaults', () => {
    const s = resolveServerSettings({
      telemetry: { alertIntervalMs: 200 },
      mq: { mqtt: { port: 0 } },
    });
    assert.equal(s.telemetry.alertIntervalMs, 200);
    assert.equal(s.telemetry.spanRetentionMs, 72 * 3_600_000);
    assert.deepEqual(s.mq.mqtt, { port: 0, host: '127.0.0.1' });
    assert.equal(s.mq.sessionMs, 20_000);
  });

  it('refuses an option out of range with the option, what it takes and what it got', () => {
    for (const [options, pattern] of [
      [{ postgresPoolMax: 4 }, /^postgresPoolMax must be an integer from 8 to 500 .* got 4$/],
      [{ mq: { retentionMs: 0 } }, /^mq\.retentionMs must be a number of ms above 0, got 0$/],
      [
        { telemetry: { alertIntervalMs: 10 } },
        /^telemetry\.alertIntervalMs .*at least 50, got 10$/,
      ],
      [{ guard: { tokenServer: 'off' } }, /^guard\.tokenServer must be true or false, got "off"$/],
      [{ mq: { mqtt: { port: -1 } } }, /^mq\.mqtt\.port must be a TCP port .* got -1$/],
      [
        { mq: { mqtt: { port: 0, wsPort: 70_000 } } },
        /^mq\.mqtt\.wsPort must be a TCP port .* got 70000$/,
      ],
    ] as const) {
      assert.throws(
        () => resolveServerSettings(options as never),
        (e) => isPeakError(e, 'PEAK_USAGE') && pattern.test(e.message),
        JSON.stringify(options),
      );
    }
  });

  it('is the table docs/configuration.md shows: every variable, what it takes, its default', async () => {
    // Compiled to packages/peakware/dist/src/server/: the repository root is five up.
    const doc = await readFile(
      new URL('../../../../../docs/configuration.md', import.meta.url),
      'utf8',
    );
    for (const s of SERVER_SETTINGS) {
      const { takes, fallback } = describeSetting(s);
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${s.env}\` |`));
      assert.ok(row, `${s.env} has a row`);
      assert.ok(row.includes(`| ${takes} | ${fallback} | \`${s.option}\` |`), row);
    }
    for (const v of [
      MQTT_SETTINGS.port.env,
      MQTT_SETTINGS.host.env,
      RPC_SETTINGS.port.env,
      RPC_SETTINGS.host.env,
      TXN_HTTP_BRANCHES.env,
    ])
      assert.ok(doc.includes(`| \`${v}\` |`), v);
  });
});
