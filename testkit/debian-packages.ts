import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Installs Debian packages that a test, a drill or a benchmark runs (a browser, a database, a load
 * balancer) unless `installed` says they are there: a fresh machine must run `npm install && npm
 * test` with nothing installed by hand. Installing needs root and apt-get; without them the error
 * says what to install. `what` names what is missing, for that error.
 */
export function ensureDebianPackages(packages: readonly string[], installed: () => boolean, what: string): void {
  if (installed()) return;
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    throw new Error(`${what} is missing and cannot be installed here: install Debian's packages (${command})`);
  }
  const apt = (...args: string[]) =>
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  apt('update', '-qq');
  apt('install', '-y', '-qq', '--no-install-recommends', ...packages);
  if (!installed()) throw new Error(`apt-get installed ${packages.join(' ')}, but ${what} is still missing`);
}
