/**
 * Debian's Chromium driven by playwright-core (no browser download): `/usr/bin/chromium`,
 * or `PEAK_CHROMIUM`. The flags keep a headless Chromium from reaching out to the network
 * at start (background networking, component updates, sync) and let it run as root.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Where Chromium is, or undefined when it is not installed. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.PEAK_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
}

/** Launches headless Chromium; throws naming what to install when it is missing. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (executablePath === undefined) {
    throw new Error(
      'Chromium is not installed: apt-get install chromium (scripts/run-tests.mjs installs it as root), or set PEAK_CHROMIUM',
    );
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}
