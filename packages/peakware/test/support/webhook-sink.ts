/**
 * Test support: a real HTTP server on loopback that records the JSON bodies POSTed to it
 * (alert webhooks), answering 204.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running sink: its URL, what it received, and how to close it. */
export interface WebhookSink {
  url: string;
  close(): Promise<void>;
}

/** Starts a sink that pushes every received JSON body onto `received`. */
export async function startWebhookSink<T>(received: T[]): Promise<WebhookSink> {
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => {
      text += c.toString();
    });
    req.on('end', () => {
      received.push(JSON.parse(text) as T);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
