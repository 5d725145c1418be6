/**
 * The Lua scripts behind `RedisDedupeStore`. Redis runs a script without interleaving any
 * other command, which is what makes a claim atomic across workers.
 *
 * A key holds `running` while a worker has claimed the job and `done` once its result was
 * published; Redis itself expires either, so the workers' clocks never matter.
 */

/** The values a dedupe key holds. */
export const RUNNING = 'running';
export const DONE = 'done';

/**
 * KEYS[1]: the job's key; ARGV[1]: the lease in milliseconds. Answers `claimed`, `in-progress`
 * or `done`, setting the key to `running` only when it answers `claimed`.
 */
export const CLAIM_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if value == '${DONE}' then return 'done' end
if value then return 'in-progress' end
redis.call('SET', KEYS[1], '${RUNNING}', 'PX', ARGV[1])
return 'claimed'
`;

/**
 * KEYS[1]: the job's key. Deletes it only while it holds `running`, so a release that arrives
 * after the job was completed leaves `done` in place. Answers how many keys it deleted.
 */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == '${RUNNING}' then return redis.call('DEL', KEYS[1]) end
return 0
`;
