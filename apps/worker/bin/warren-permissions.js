#!/usr/bin/env node
// Runs the compiled permissions generator (dist/, written by `pnpm build`).
import { missingBuild } from './missing-build.js';

await import('../dist/permissions-cli.js').catch(missingBuild);
