#!/usr/bin/env node
// Runs the compiled worker (dist/, written by `pnpm build`, which `pnpm install` runs). A plugin
// written in TypeScript has tsx registered for it when it is loaded (src/plugins.ts).
import { exitUnlessBuilt } from './unbuilt.js';

exitUnlessBuilt(new URL('../dist/main.js', import.meta.url));
await import('../dist/main.js');
