// Part of `npm run build`: tsc emits only what it compiles, so the files the shim loads at run time
// that are not TypeScript (the checkpoint worker, plain JavaScript) are copied beside the output,
// and the `holdfast` command is made executable.
import { chmodSync, cpSync, readFileSync } from 'node:fs';

cpSync('edge-shim/src', 'dist/edge-shim/src', { recursive: true, filter: (path) => !path.endsWith('.ts') });
const { bin } = JSON.parse(readFileSync('package.json', 'utf8'));
for (const file of Object.values(bin)) chmodSync(file, 0o755);
