/** `peak status`: is a server up and ready, which version, which nodes. */
import type { Command } from '../command.js';
import { requestJson, SERVER_OPTIONS } from '../control-client.js';

interface Info {
  version: string;
  nodeId: string;
  schemaVersion: number;
  postgres: string;
  uptimeSeconds: number;
}
interface Ready {
  status: string;
  reason?: string;
}
interface Nodes {
  nodes: { nodeId: string; httpUrl: string; version: string; lastSeenAt: string; self: boolean }[];
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'show whether a peak server is ready, and the control-plane nodes',
  options: SERVER_OPTIONS,
  async run({ values, out }) {
    const server = String(values.server);
    const info = await requestJson<Info>(server, 'GET', '/api/v1/info');
    const ready = await requestJson<Ready>(server, 'GET', '/ready').catch(
      (err: Error): Ready => ({ status: 'not-ready', reason: err.message }),
    );
    const { nodes } = await requestJson<Nodes>(server, 'GET', '/api/v1/nodes');
    out.json({ server, ready: ready.status === 'ready', info, nodes });
    out.line(`server    ${server}`);
    out.line(`status    ${ready.status}${ready.reason ? ` (${ready.reason})` : ''}`);
    out.line(`version   ${info.version}, schema ${info.schemaVersion}, postgres ${info.postgres}`);
    out.line(`uptime    ${info.uptimeSeconds}s`);
    out.line(`nodes     ${nodes.length}`);
    for (const n of nodes) {
      out.line(
        `  ${n.self ? '*' : ' '} ${n.nodeId.padEnd(32)} ${n.httpUrl.padEnd(24)} ${n.version}`,
      );
    }
    return ready.status === 'ready' ? 0 : 1;
  },
};
