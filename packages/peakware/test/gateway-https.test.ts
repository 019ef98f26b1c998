/**
 * `peak gateway --tls-cert --tls-key`: the open API over HTTPS from certificate files (a
 * dev CA from `peak tls init`): a client that trusts the CA gets through, one that does not
 * is refused in the handshake, and plain HTTP gets nothing.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDevPki } from '../src/security/index.js';
import { type GatewayFixture, gatewayFixture } from './gateway-fixture.js';

/** GET `url` trusting `ca`: the status, or the error's code. */
function get(url: string, ca: Buffer): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('peak gateway over HTTPS', { timeout: 120_000 }, () => {
  let f: GatewayFixture;
  let url: string;
  let ca: Buffer;
  let otherCa: Buffer;

  before(async () => {
    f = await gatewayFixture('gw-https');
    const pki = await createDevPki({ dir: path.join(f.dataDir, 'tls'), names: ['server'] });
    const other = await createDevPki({ dir: path.join(f.dataDir, 'tls-2'), names: ['server'] });
    ca = await readFile(pki.caFile);
    otherCa = await readFile(other.caFile);
    url = await f.startGateway([
      '--tls-cert',
      pki.certs.server!.certFile,
      '--tls-key',
      pki.certs.server!.keyFile,
    ]);
  });

  after(async () => {
    await f?.close();
  });

  it('serves HTTPS to a client that trusts the CA, and nothing to others', async () => {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(await get(`${url}/_peak/health`, ca), 200);
    assert.notEqual(await get(`${url}/_peak/health`, otherCa), 200);
    await assert.rejects(
      fetch(`${url.replace('https:', 'http:')}/_peak/health`, {
        signal: AbortSignal.timeout(5000),
      }),
    );
  });
});
