/**
 * Serving TLS from certificate files: read a certificate and key pair (a wrong file is a
 * PEAK_USAGE naming it), and watch the files so a renewed pair reaches new connections
 * without a restart (a pair that does not load is logged and the one in use stays). Used
 * by `peak server` (HTTPS for the control plane and the console) and `peak gateway`.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ErrorCodes, errorMessage, PeakError } from './errors.js';
import type { Logger } from './logger.js';

/** Certificate files to serve TLS from (`peak tls init` makes a dev pair). */
export interface TlsFiles {
  /** The certificate chain, PEM. */
  certFile: string;
  /** Its private key, PEM. */
  keyFile: string;
  /** How often the files are checked for a change, ms. Default 2000. */
  reloadIntervalMs?: number;
}

/** A certificate and key, read. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads a certificate and key pair, or throws PEAK_USAGE naming the file that is wrong. */
export async function readTlsFiles(files: TlsFiles): Promise<TlsPair> {
  const read = async (file: string, what: 'certificate' | 'key') => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new PeakError(
        ErrorCodes.USAGE,
        `cannot read the TLS ${what} ${file}: ${errorMessage(err)} ('peak tls init' makes a dev pair)`,
        { cause: err, details: { input: what === 'certificate' ? '--tls-cert' : '--tls-key' } },
      );
    }
  };
  const pair = {
    cert: await read(files.certFile, 'certificate'),
    key: await read(files.keyFile, 'key'),
  };
  try {
    createSecureContext(pair);
  } catch (err) {
    throw new PeakError(
      ErrorCodes.USAGE,
      `the TLS certificate ${files.certFile} and key ${files.keyFile} do not make a pair: ${errorMessage(err)}`,
      { cause: err, details: { input: '--tls-cert' } },
    );
  }
  return pair;
}

/** A server whose certificate can be replaced for new connections (https.Server, tls.Server). */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

/** Watches certificate files and serves a changed pair to new connections. */
export class TlsFilesWatcher {
  readonly #files: TlsFiles;
  readonly #target: SecureContextTarget;
  readonly #logger: Logger;
  readonly #onChange = () => {
    this.reload().catch(() => undefined);
  };
  #closed = false;

  /** Starts watching `files` for `target`. */
  constructor(files: TlsFiles, target: SecureContextTarget, logger: Logger) {
    this.#files = files;
    this.#target = target;
    this.#logger = logger;
    const interval = files.reloadIntervalMs ?? 2000;
    watchFile(files.certFile, { interval, persistent: false }, this.#onChange);
    watchFile(files.keyFile, { interval, persistent: false }, this.#onChange);
  }

  /**
   * Reads the files again and serves them to new connections (for a caller that knows they
   * changed). Resolves whether the new pair is in use.
   */
  async reload(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      this.#target.setSecureContext(await readTlsFiles(this.#files));
      this.#logger.info({ certFile: this.#files.certFile }, 'TLS certificate reloaded');
      return true;
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err) },
        'TLS certificate files changed but do not load; the certificate in use stays',
      );
      return false;
    }
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    unwatchFile(this.#files.certFile, this.#onChange);
    unwatchFile(this.#files.keyFile, this.#onChange);
  }
}
