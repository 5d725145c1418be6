export type { WorkerConfig, WorkerConfigInput } from './config.ts';
export { loadConfig, parseConfig, workerConfigSchema } from './config.ts';
export type { LoadedHandler } from './plugins.ts';
export { loadHandler } from './plugins.ts';
export type { WorkerExit, WorkerHealth, WorkerOptions } from './worker.ts';
export { Worker } from './worker.ts';
