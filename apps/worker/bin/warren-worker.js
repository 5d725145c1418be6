#!/usr/bin/env node
// Runs the compiled worker (dist/, written by `pnpm build`, which `pnpm install` runs). A plugin
// written in TypeScript has tsx registered for it when it is loaded (src/plugins.ts).
import { missingBuild } from './missing-build.js';

await import('../dist/main.js').catch(missingBuild);
