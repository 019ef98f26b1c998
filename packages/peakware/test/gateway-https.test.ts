/**
 * `peak gateway --tls-cert --tls-key`: the open API over HTTPS from certificate files (a
 * dev CA from `peak tls init`): a client that trusts the CA gets through, one that does not
 * is refused in the handshake, and plain HTTP gets nothing. The HTTP front reads the
 * decrypted requests itself and hands node:http what it does not serve, over TLS as in clear.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { createDevPki } from '../src/security/index.js';
import { type GatewayFixture, gatewayFixture } from './gateway-fixture.js';

/**
 * Writes `text` over one TLS connection to `url` trusting `ca`; resolves with what it read
 * once `done` says it is all there (or after 5 s).
 */
function rawTls(
  url: string,
  ca: Buffer,
  text: string,
  done: (out: string) => boolean,
): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () =>
      s.write(text),
    );
    let out = '';
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(finish, 5000);
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (done(out)) finish();
    });
    s.on('close', finish);
    s.on('error', reject);
  });
}

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
  let other: Awaited<ReturnType<typeof createDevPki>>;
  const live = { certFile: '', keyFile: '' };

  before(async () => {
    f = await gatewayFixture('gw-https');
    const pki = await createDevPki({ dir: path.join(f.dataDir, 'tls'), names: ['server'] });
    other = await createDevPki({ dir: path.join(f.dataDir, 'tls-2'), names: ['server'] });
    ca = await readFile(pki.caFile);
    otherCa = await readFile(other.caFile);
    // Files of its own, replaced by the last test.
    live.certFile = path.join(f.dataDir, 'live-cert.pem');
    live.keyFile = path.join(f.dataDir, 'live-key.pem');
    await copyFile(pki.certs.server!.certFile, live.certFile);
    await copyFile(pki.certs.server!.keyFile, live.keyFile);
    url = await f.startGateway(['--tls-cert', live.certFile, '--tls-key', live.keyFile]);
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

  it('serves plain requests from the front and hands the rest to node:http, over TLS', async () => {
    const out = await rawTls(
      url,
      ca,
      // Two plain GETs, then a chunked POST (node:http's), then one more GET on that connection.
      'GET /_peak/health HTTP/1.1\r\nhost: a\r\n\r\n' +
        'GET /_peak/health HTTP/1.1\r\nhost: a\r\n\r\n' +
        'POST /_peak/health HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' +
        'GET /_peak/health HTTP/1.1\r\nhost: a\r\n\r\n',
      (o) => (o.match(/HTTP\/1\.1 200 OK\r\n/g)?.length ?? 0) >= 4 && o.endsWith('}'),
    );
    assert.equal(out.match(/HTTP\/1\.1 200 OK\r\n/g)?.length, 4, out);
    // The front's answers say `connection: keep-alive` in lower case; node's in its own case.
    assert.equal(out.match(/^connection: keep-alive\r\n/gm)?.length, 2, out);
    const bad = await rawTls(
      url,
      ca,
      'GET /_peak/health HTTP/1.1\r\nhost: a\r\nx: \u0001\r\n\r\n',
      (o) => o.includes('\r\n\r\n{'),
    );
    assert.match(bad, /^HTTP\/1\.1 400 Bad Request\r\n/);
  });

  it('serves replaced certificate files to new connections without a restart', async () => {
    await copyFile(other.certs.server!.keyFile, live.keyFile);
    await copyFile(other.certs.server!.certFile, live.certFile);
    let served: number | string = 0;
    for (let i = 0; i < 100 && served !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      served = await get(`${url}/_peak/health`, otherCa);
    }
    assert.equal(served, 200, 'the new certificate served');
    assert.notEqual(await get(`${url}/_peak/health`, ca), 200, 'the old one no longer');
  });
});
