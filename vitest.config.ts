import { defineConfig } from 'vitest/config';

// The tests run the TypeScript sources: each workspace package exports its src/ under the `source`
// condition (and its compiled dist/ by default, for the worker binary). Vitest's own default for
// its server conditions, with `source` first; it also hands them to the test processes as
// `--conditions`, so `module` (which some packages map to builds Node cannot load) stays out.
export default defineConfig({
  ssr: { resolve: { conditions: ['source', 'node', 'development|production'] } },
  test: {
    globalSetup: ['vitest.global-setup.ts'],
    include: [
      'packages/*/test/**/*.test.ts',
      'apps/*/test/**/*.test.ts',
      'bench/test/**/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
