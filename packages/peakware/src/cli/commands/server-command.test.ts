import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MQTT_SETTINGS,
  RPC_SETTINGS,
  SERVER_SETTINGS,
  TXN_HTTP_BRANCHES,
} from '../../server/server-settings.js';
import { helpText } from '../command.js';
import { serverCommand } from './server-command.js';

describe('peak server --help', () => {
  it('lists every PEAK_* variable the command reads, with its default', () => {
    const help = helpText(['peak', 'server'], serverCommand);
    for (const s of SERVER_SETTINGS) {
      const line = help.split('\n').find((l) => l.trimStart().startsWith(`${s.env} `));
      assert.ok(line, `${s.env} is listed`);
      assert.match(line, /\(default: [^)]+\)$/, line);
    }
    for (const name of [
      MQTT_SETTINGS.port.env,
      MQTT_SETTINGS.host.env,
      RPC_SETTINGS.port.env,
      RPC_SETTINGS.host.env,
      TXN_HTTP_BRANCHES.env,
      'PEAK_DATA',
      'PEAK_PORT',
    ])
      assert.ok(help.includes(name), name);
    assert.match(help, /docs\/configuration\.md/);
  });
});
