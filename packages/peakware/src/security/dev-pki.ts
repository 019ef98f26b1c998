/**
 * A local certificate authority for a dev or test cluster (`peak tls init`): one CA and a
 * certificate per name, signed by it, valid for the names and loopback (subjectAltName
 * `DNS:<name>, DNS:localhost, IP:127.0.0.1, IP:::1`). Made with the `openssl` command
 * (present on Linux and macOS), P-256 keys, written as PEM files with keys at mode 0600.
 * Production certificates come from the operator's own CA; these are for laptops and CI.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ErrorCodes, PeakError } from '../core/errors.js';

const run = promisify(execFile);

/** Options of {@link createDevPki}. */
export interface DevPkiOptions {
  /** Where the files go (created if missing). */
  dir: string;
  /** One certificate per name, e.g. `['provider', 'consumer']`. */
  names: readonly string[];
  /** The CA's common name. Default `peakware dev CA`. */
  caName?: string;
  /** Validity, days. Default 365. */
  days?: number;
  /** Replace files that exist. Default false: an existing CA is reused, existing certificates kept. */
  force?: boolean;
}

/** The files {@link createDevPki} wrote (absolute paths). */
export interface DevPki {
  caFile: string;
  caKeyFile: string;
  certs: Record<string, { certFile: string; keyFile: string }>;
}

const NAME = /^[a-z0-9][a-z0-9.-]{0,62}$/i;

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new PeakError(
        ErrorCodes.USAGE,
        'the openssl command is not installed; install it (apt-get install openssl, brew install openssl) or bring certificates from your own CA',
      );
    }
    throw new PeakError(ErrorCodes.INTERNAL, `openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

/** Makes (or completes) a dev CA and one certificate per name in `options.dir`. */
export async function createDevPki(options: DevPkiOptions): Promise<DevPki> {
  for (const name of options.names) {
    if (!NAME.test(name)) {
      throw new PeakError(
        ErrorCodes.USAGE,
        `'${name}' is not a certificate name: use letters, digits, dots and dashes (a host or service name)`,
        { details: { input: name } },
      );
    }
  }
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const days = String(options.days ?? 365);
  const caFile = path.join(dir, 'ca.pem');
  const caKeyFile = path.join(dir, 'ca.key');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  if (options.force === true || !existsSync(caFile) || !existsSync(caKeyFile)) {
    await openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-days',
      days,
      '-subj',
      `/CN=${options.caName ?? 'peakware dev CA'}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      caKeyFile,
      '-out',
      caFile,
    ]);
    await chmod(caKeyFile, 0o600);
  }
  const certs: DevPki['certs'] = {};
  for (const name of options.names) {
    const certFile = path.join(dir, `${name}.pem`);
    const keyFile = path.join(dir, `${name}.key`);
    certs[name] = { certFile, keyFile };
    if (options.force !== true && existsSync(certFile) && existsSync(keyFile)) continue;
    const csr = path.join(dir, `${name}.csr`);
    const ext = path.join(dir, `${name}.ext`);
    await writeFile(
      ext,
      `subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth,clientAuth\n`,
    );
    await openssl(dir, ['req', ...ec, '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csr]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      caFile,
      '-CAkey',
      caKeyFile,
      '-CAcreateserial',
      '-days',
      days,
      '-extfile',
      ext,
      '-out',
      certFile,
    ]);
    await chmod(keyFile, 0o600);
    await rm(csr, { force: true });
    await rm(ext, { force: true });
  }
  return { caFile, caKeyFile, certs };
}
