import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A module Node cannot load by itself: TypeScript. */
export function isTypeScript(file: string): boolean {
  return /\.[cm]?ts$/.test(file);
}

export class TypeScriptLoaderMissing extends Error {
  override readonly name = 'TypeScriptLoaderMissing';
}

/**
 * The URL of tsx's ESM API (`tsx/esm/api`, its `import` export), which loads TypeScript for
 * `module`: tsx from the module's own project first (a site's workflow may bring its own), else from
 * beside this package (`npm install -g tsx` next to a global holdfast). tsx is no dependency of the
 * site package: only a workflow written in TypeScript needs it.
 */
export function tsxApiFor(module: string): string {
  for (const from of [module, fileURLToPath(import.meta.url)]) {
    let manifestPath: string;
    try {
      manifestPath = createRequire(from).resolve('tsx/package.json');
    } catch {
      continue;
    }
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports: Record<string, { import?: { default?: string } }> };
    const target = manifest.exports['./esm/api']?.import?.default;
    if (target) return pathToFileURL(join(dirname(manifestPath), target)).href;
  }
  throw new TypeScriptLoaderMissing(
    `${module} is TypeScript, which needs tsx to load: install it beside holdfast (npm install -g tsx) or in the module's own project (npm install --save-dev tsx)`,
  );
}
