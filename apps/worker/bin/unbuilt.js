import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The workspace packages the worker imports at start (others are loaded when a config asks). */
const PACKAGES = [
  '@warren/amqp',
  '@warren/core',
  '@warren/inference',
  '@warren/security',
  '@warren/telemetry',
];

// The bins run dist/; a checkout that has not been built is told how, not shown a module trace.
export function exitUnlessBuilt(entry) {
  const entries = [entry, ...PACKAGES.map(compiledEntryOf)];
  const missing = entries.find((url) => url !== undefined && !existsSync(url));
  if (missing === undefined) return;
  process.stderr.write(
    `${fileURLToPath(missing)} is missing: the worker is not built. ` +
      'Run `pnpm build` (or `pnpm install`) in the repository.\n',
  );
  process.exit(2);
}

/** Where a package's compiled entry should be; undefined if the package is not installed. */
function compiledEntryOf(name) {
  try {
    return new URL(import.meta.resolve(name));
  } catch {
    return undefined;
  }
}
