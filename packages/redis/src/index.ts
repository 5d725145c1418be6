export type { RedisClientOptions } from './redis-connection.ts';
export { DEFAULT_REDIS_URL } from './redis-connection.ts';
export type { RedisDedupeStoreOptions } from './redis-dedupe-store.ts';
export { DEFAULT_DEDUPE_KEY_PREFIX, RedisDedupeStore } from './redis-dedupe-store.ts';
export type { RedisReplayGuardOptions } from './redis-replay-guard.ts';
export { DEFAULT_REPLAY_KEY_PREFIX, RedisReplayGuard } from './redis-replay-guard.ts';
export { redactRedisUrl } from './url.ts';
