export type { RedisDedupeStoreOptions } from './redis-dedupe-store.ts';
export {
  DEFAULT_DEDUPE_KEY_PREFIX,
  DEFAULT_REDIS_URL,
  RedisDedupeStore,
} from './redis-dedupe-store.ts';
export { redactRedisUrl } from './url.ts';
