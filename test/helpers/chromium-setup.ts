import { existsSync } from 'node:fs';
import { ensureDebianPackages } from '../../testkit/debian-packages.js';

/** Debian's Chromium, which the status page's browser test drives (playwright-core never downloads a browser). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Global setup of the status page's tests: a machine without Chromium gets Debian's package, as a
 * fresh machine must be able to run `npm install && npm test` with nothing installed by hand.
 */
export default function setup(): void {
  ensureDebianPackages(['chromium', 'fonts-dejavu-core'], () => existsSync(CHROMIUM), CHROMIUM);
}
