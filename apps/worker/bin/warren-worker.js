#!/usr/bin/env node
// The worker's sources are TypeScript; tsx compiles them (and plugin modules) on load.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
