/** Which bind addresses keep traffic on the machine (a tiny module the CLI loads eagerly). */

/** Whether `host` is a loopback address (or name): traffic to it never leaves the machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
