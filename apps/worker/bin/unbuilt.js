import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The bins run dist/; a checkout that has not been built is told how, not shown a module trace.
export function exitUnlessBuilt(entry) {
  const entries = [entry, ...workspaceDependencies().map(compiledEntryOf)];
  const missing = entries.find((url) => url !== undefined && !existsSync(url));
  if (missing === undefined) return;
  process.stderr.write(
    `${fileURLToPath(missing)} is missing: the worker is not built. ` +
      'Run `pnpm build` (or `pnpm install`) in the repository.\n',
  );
  process.exit(2);
}

/** The `@warren/*` packages the worker depends on, each built with it (none without a manifest). */
function workspaceDependencies() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  } catch {
    return [];
  }
  return Object.keys(manifest.dependencies ?? {}).filter((name) => name.startsWith('@warren/'));
}

/** Where a package's compiled entry should be; undefined if the package is not installed. */
function compiledEntryOf(name) {
  try {
    return new URL(import.meta.resolve(name));
  } catch {
    return undefined;
  }
}
