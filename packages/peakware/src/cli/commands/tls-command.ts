/**
 * `peak tls init`: a local CA and certificates for a dev cluster: the control plane's HTTPS
 * (`server`) and RPC's TLS and mutual TLS (`provider`, `consumer`).
 */
import { UsageError } from '../../core/errors.js';
import { createDevPki } from '../../security/dev-pki.js';
import type { Command } from '../command.js';

const init: Command = {
  name: 'init',
  summary: 'make a dev CA and one certificate per name (valid for the name and loopback)',
  options: {
    dir: {
      type: 'string',
      valueName: 'DIR',
      description: 'where the PEM files go (default .peak/tls)',
    },
    names: {
      type: 'string',
      valueName: 'A,B',
      description: 'comma-separated certificate names (default server,provider,consumer)',
    },
    days: {
      type: 'string',
      valueName: 'N',
      description: 'validity in days (default 365)',
      integer: { min: 1 },
    },
    force: { type: 'boolean', description: 'replace existing files (default: keep them)' },
  },
  examples: [
    'peak tls init',
    'peak tls init --dir certs --names server,peak.example.com,inventory,order --days 30',
  ],
  async run({ values, out }) {
    const days = values.days === undefined ? 365 : Number(values.days);
    if (!Number.isInteger(days) || days < 1 || days > 3650) {
      throw new UsageError(`--days must be an integer 1-3650, got ${String(values.days)}`);
    }
    const names = String(values.names ?? 'server,provider,consumer')
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n.length > 0);
    const pki = await createDevPki({
      dir: String(values.dir ?? '.peak/tls'),
      names,
      days,
      force: values.force === true,
    });
    out.json(pki);
    out.line(`CA: ${pki.caFile} (key ${pki.caKeyFile}, keep it private)`);
    for (const [name, c] of Object.entries(pki.certs)) {
      out.line(`${name}: ${c.certFile} + ${c.keyFile}`);
    }
    const server = pki.certs.server;
    if (server !== undefined) {
      out.line(
        `HTTPS for the control plane: peak server --tls-cert ${server.certFile} --tls-key ${server.keyFile}`,
      );
      out.line(`clients trust the CA with NODE_EXTRA_CA_CERTS=${pki.caFile}`);
    }
    out.line(
      'RPC: TlsTransport (peakware/rpc) with the provider and consumer pairs; see src/security/README.md',
    );
    return 0;
  },
};

export const tlsCommand: Command = {
  name: 'tls',
  summary: 'certificates for TLS between services',
  subcommands: [init],
};
