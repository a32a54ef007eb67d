import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's Chromium, which the status page's browser test drives (playwright-core never downloads a browser). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Global setup of the status page's tests: a machine without Chromium gets Debian's package, as a
 * fresh machine must be able to run `npm install && npm test` with nothing installed by hand.
 * Installing needs root and apt-get; without them the setup says what to install.
 */
export default function setup(): void {
  if (existsSync(CHROMIUM)) return;
  const root = process.getuid?.() === 0;
  if (!root || !existsSync('/usr/bin/apt-get')) {
    throw new Error(`${CHROMIUM} is missing and cannot be installed here: install Debian's chromium package (apt-get install -y chromium fonts-dejavu-core)`);
  }
  const apt = (...args: string[]) =>
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  apt('update', '-qq');
  apt('install', '-y', '-qq', '--no-install-recommends', 'chromium', 'fonts-dejavu-core');
}
