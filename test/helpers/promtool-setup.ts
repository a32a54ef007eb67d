import { existsSync } from 'node:fs';
import { ensureDebianPackages } from '../../testkit/debian-packages.js';

/** Debian's promtool (in its prometheus package), which checks and unit-tests the example alert rules. */
export const PROMTOOL = '/usr/bin/promtool';

/**
 * Global setup of the alert rules' tests: a machine without promtool gets Debian's package, as a
 * fresh machine must be able to run `npm install && npm test` with nothing installed by hand.
 */
export default function setup(): void {
  ensureDebianPackages(['prometheus'], () => existsSync(PROMTOOL), PROMTOOL);
}
