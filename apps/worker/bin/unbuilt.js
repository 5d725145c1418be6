import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The bins run dist/; a checkout that has not been built is told how, not shown a module trace.
export function exitUnlessBuilt(entry) {
  if (existsSync(entry)) return;
  process.stderr.write(
    `${fileURLToPath(entry)} is missing: the worker is not built. ` +
      'Run `pnpm build` (or `pnpm install`) in the repository.\n',
  );
  process.exit(2);
}
