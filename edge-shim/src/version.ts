import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json: two directories up from here when run from source
 * (edge-shim/src), three from a build (dist/edge-shim/src).
 */
function packageVersion(): string {
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'holdfast' && manifest.version) return manifest.version;
    } catch {
      // Not there: the other layout.
    }
  }
  throw new Error('cannot find the holdfast package.json to read the version from');
}

export const VERSION = packageVersion();
