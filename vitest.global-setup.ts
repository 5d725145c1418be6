import { execFileSync } from 'node:child_process';

/**
 * Builds dist/ before any test runs: the tests that start the worker binary run the compiled
 * JavaScript, and must not run a stale build (or none) when vitest is started on its own.
 */
export default function buildOnce(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
