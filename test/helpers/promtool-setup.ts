import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's promtool (in its prometheus package), which checks and unit-tests the example alert rules. */
export const PROMTOOL = '/usr/bin/promtool';

/**
 * Global setup of the alert rules' tests: a machine without promtool gets Debian's package, as a
 * fresh machine must be able to run `npm install && npm test` with nothing installed by hand.
 * Installing needs root and apt-get; without them the setup says what to install.
 */
export default function setup(): void {
  if (existsSync(PROMTOOL)) return;
  const root = process.getuid?.() === 0;
  if (!root || !existsSync('/usr/bin/apt-get')) {
    throw new Error(`${PROMTOOL} is missing and cannot be installed here: install Debian's prometheus package (apt-get install -y --no-install-recommends prometheus)`);
  }
  const apt = (...args: string[]) =>
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  apt('update', '-qq');
  apt('install', '-y', '-qq', '--no-install-recommends', 'prometheus');
}
