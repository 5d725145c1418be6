#!/usr/bin/env node
// The generator's sources are TypeScript; tsx compiles them on load.
import { register } from 'tsx/esm/api';

register();
await import('../src/permissions-cli.ts');
