/** `peak status`: is a server up and ready, which version, which nodes. */
import type { Command } from '../command.js';
import { adminClient, SERVER_OPTIONS } from '../control-client.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'show whether a peak server is ready, and the control-plane nodes',
  options: SERVER_OPTIONS,
  async run({ values, out }) {
    const admin = await adminClient(values);
    const info = await admin.system.info();
    const server = admin.http.server;
    const ready = await admin.system.ready().catch((err: Error) => ({
      status: 'not-ready' as const,
      reason: err.message,
    }));
    const nodes = await admin.system.nodes();
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
