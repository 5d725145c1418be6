#!/usr/bin/env node
// Runs the compiled permissions generator (dist/, written by `pnpm build`).
import { exitUnlessBuilt } from './unbuilt.js';

exitUnlessBuilt(new URL('../dist/permissions-cli.js', import.meta.url));
await import('../dist/permissions-cli.js');
