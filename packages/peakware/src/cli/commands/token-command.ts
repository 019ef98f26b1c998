/** `peak token rotate`: replace the admin token; the old one stops working at once. */
import type { Command } from '../command.js';
import { ADMIN_OPTIONS, adminClient } from '../control-client.js';

const rotate: Command = {
  name: 'rotate',
  summary: 'replace the admin token (prints the new one once)',
  options: ADMIN_OPTIONS,
  examples: [
    'peak token rotate',
    'peak token rotate --server http://10.0.0.5:7420 --token peak_...',
  ],
  async run({ values, out }) {
    const result = await (await adminClient(values, { admin: true })).system.rotateToken();
    out.json(result);
    out.line('admin token rotated; the old token no longer works.');
    out.line(`new token (also written to ${result.file} on the server, mode 0600):`);
    out.line(`  ${result.token}`);
    return 0;
  },
};

export const tokenCommand: Command = {
  name: 'token',
  summary: 'manage the admin token',
  subcommands: [rotate],
};
