/**
 * What the CLI sent as credentials in this run (which context, server and token file), so
 * the error for a refused token can say so. Set where the admin client is built, read by
 * `run-cli.ts` when a call fails with PEAK_UNAUTHENTICATED or PEAK_FORBIDDEN.
 */

/** Where this run's server and token came from. */
export interface CredentialSource {
  servers: string[];
  /** `--token`/`PEAK_TOKEN`, or the file the token was read from. */
  token: string;
}

let current: CredentialSource | undefined;
let contextName: string | undefined;

/** Records the context this run uses (run-cli.ts, before the command runs). */
export function noteContext(name: string | undefined): void {
  contextName = name;
}

/** Records this run's server list and token source (where the admin client is built). */
export function noteCredentials(source: CredentialSource): void {
  current = source;
}

/** The line that follows a refused-token error, or undefined when no token was sent. */
export function refusedTokenHint(): string | undefined {
  if (current === undefined) return undefined;
  const context = contextName === undefined ? 'no context' : `context '${contextName}'`;
  return `peak: the server (${current.servers.join(', ')}) refused the admin token from ${current.token} (${context}); check that it is this server's token: peak context ls, --token-file FILE, or --token`;
}
