import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DEFAULT_RECOVERY, urlHasPassword } from '@warren/amqp';
import {
  ConfigError,
  DEFAULT_RESTART_BACKOFF,
  describeIssues,
  describeThrown,
  retryPolicyOverrides,
  SCOPE_PATTERN,
} from '@warren/core';
import { ALGORITHMS, DEFAULT_REPLAY_MAX_ENTRIES, DEFAULT_WINDOW_MS } from '@warren/security';
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/, {
  message: "expected lower-case letters, digits, '.', '_' or '-'",
});

const retryPolicy = retryPolicyOverrides;

const handlerEntry = z
  .object({
    /** Path of the plugin module, relative to the config file, or a package name. */
    module: z.string().min(1),
    prefetch: z.int().min(1).max(65_535).default(16),
    concurrency: z.int().min(1).max(1_024).default(1),
    /** Overrides the handler's own retry policy, field by field. */
    retry: retryPolicy.optional(),
    /** Lets prefetch follow the model's speed within these bounds, starting from `prefetch`. */
    adaptivePrefetch: z
      .object({ min: z.int().min(1).max(65_535), max: z.int().min(1).max(65_535) })
      .strict()
      .refine((bounds) => bounds.min <= bounds.max, { message: 'expected min to be at most max' })
      .optional(),
    /** Overrides the handler's own batching, field by field. */
    batch: z
      .object({
        maxSize: z.int().min(1).max(4_096),
        maxWaitMs: z.int().min(0).max(60_000),
        maxTokens: z.int().min(1),
      })
      .partial()
      .strict()
      .optional(),
    options: z.unknown().optional(),
    /**
     * Narrows the handler's own clearance (scopes, tenants) and names, by scope, the broker
     * accounts allowed to publish its jobs. It cannot add a scope or tenant the handler lacks.
     */
    clearance: z
      .object({
        scopes: z.array(z.string().regex(SCOPE_PATTERN)).min(1),
        tenants: z.array(z.string().min(1)).min(1),
        producers: z.record(z.string().regex(SCOPE_PATTERN), z.array(z.string().min(1)).min(1)),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict();

const localInference = z
  .object({
    /** Folder holding one sub-folder per model; relative to the config file. */
    modelPath: z.string().min(1).optional(),
    allowRemoteModels: z.boolean().optional(),
    cacheDir: z.string().min(1).optional(),
    dtype: z.enum(['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'bnb4', 'q4f16']).default('fp32'),
    onTooLong: z.enum(['truncate', 'refuse']).default('truncate'),
    maxInputTokens: z.int().min(1).optional(),
    /** Run each model in a worker thread of its own (default true); false: in the main thread. */
    thread: z.boolean().optional(),
    /**
     * ONNX Runtime's threads per run (default: cores − 1 from three cores up, else the cores);
     * 0: its own default.
     */
    intraOpThreads: z.int().min(0).optional(),
    /** Let ONNX Runtime's threads spin while they wait for the next run (default false). */
    allowSpinning: z.boolean().optional(),
  })
  .strict();

const remoteInference = z
  .object({
    endpointUrl: z.url().optional(),
    provider: z.string().min(1).optional(),
    /** Name of the environment variable holding the access token; never the token itself. */
    accessTokenEnv: z.string().min(1).optional(),
  })
  .strict();

/** An hour: longer than any sensible wait for one broker step, and well within a Node timer. */
const HOUR_MS = 3_600_000;

/** How the transport reconnects after losing the broker (`AmqpTransport`'s `recovery`). */
const brokerRecovery = z
  .object({
    initialDelayMs: z.int().min(0).max(HOUR_MS),
    multiplier: z.number().min(1).max(100),
    maxDelayMs: z.int().min(1).max(HOUR_MS),
    jitter: z.number().min(0).max(1),
    /** 0 gives up at once, without reconnecting. */
    giveUpAfterMs: z.int().min(0),
  })
  .partial()
  .strict()
  .superRefine(delaysInOrder(DEFAULT_RECOVERY));

/**
 * Checks that a backoff's cap is not below its first delay, naming the field that was set: a
 * default is not what the operator got wrong.
 */
function delaysInOrder(defaults: { initialDelayMs: number; maxDelayMs: number }) {
  return (
    delays: { initialDelayMs?: number | undefined; maxDelayMs?: number | undefined },
    context: z.RefinementCtx,
  ): void => {
    const initial = delays.initialDelayMs ?? defaults.initialDelayMs;
    const max = delays.maxDelayMs ?? defaults.maxDelayMs;
    if (max >= initial) return;
    context.addIssue(
      delays.maxDelayMs === undefined
        ? {
            code: 'custom',
            path: ['initialDelayMs'],
            input: initial,
            message: `expected at most maxDelayMs (${max}, its default)`,
          }
        : {
            code: 'custom',
            path: ['maxDelayMs'],
            input: max,
            message: `expected at least initialDelayMs (${initial})`,
          },
    );
  };
}

/** Publishes held until the broker confirms them, as during a reconnect. */
const brokerPublishBuffer = z
  .object({ maxMessages: z.int().min(1), maxBytes: z.int().min(1) })
  .partial()
  .strict();

/**
 * Where the broker user name and password come from (docs/credentials.md): a mounted secret
 * file, an environment variable or a command, each holding `{"username", "password"}` as JSON.
 * Never this file: the schema has no field for a password, and refuses one in `url`.
 */
const brokerCredentials = z
  .object({
    /** Path of the secret file, relative to the config file; watched for changes. */
    file: z.string().min(1).optional(),
    /** How often the file is read in case no change event came. */
    pollIntervalMs: z.int().min(100).max(HOUR_MS).optional(),
    /** Name of the environment variable holding the JSON; read once. */
    env: z.string().min(1).optional(),
    /** A program and its arguments, run without a shell; it prints the JSON on stdout. */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** How often the command runs again to look for new credentials. */
    refreshIntervalMs: z
      .int()
      .min(1_000)
      .max(24 * HOUR_MS)
      .optional(),
    /** How long one run of the command may take. */
    timeoutMs: z.int().min(100).max(HOUR_MS).optional(),
  })
  .strict()
  .superRefine((section, context) => {
    const named = (['file', 'env', 'command'] as const).filter((key) => section[key] !== undefined);
    if (named.length !== 1) {
      const found = named.length === 0 ? 'none' : named.join(' and ');
      const message = `expected exactly one of file, env and command, found ${found}`;
      context.addIssue({ code: 'custom', message });
    }
    const misplaced: Array<[keyof typeof section, 'file' | 'command']> = [
      ['pollIntervalMs', 'file'],
      ['refreshIntervalMs', 'command'],
      ['timeoutMs', 'command'],
    ];
    for (const [key, owner] of misplaced) {
      if (section[key] === undefined || section[owner] !== undefined) continue;
      const message = `applies only with ${owner}`;
      context.addIssue({ code: 'custom', path: [key], message });
    }
  });

/** The message for a password in `broker.url`. */
const URL_PASSWORD =
  'carries a password, which the config file must not hold: name its source in ' +
  'broker.credentials (a mounted file, an environment variable or a command; see ' +
  'docs/credentials.md), or put the URL in AMQP_URL';

const broker = z
  .object({
    /**
     * Used when AMQP_URL is unset. It may name a user, never a password: the password comes
     * from `credentials` (or AMQP_URL).
     */
    url: z
      .string()
      .regex(/^amqps?:\/\//, { message: 'expected an amqp:// or amqps:// URL' })
      .refine((url) => !urlHasPassword(url), { message: URL_PASSWORD })
      .default('amqp://127.0.0.1:5672'),
    credentials: brokerCredentials.optional(),
    connectionName: z.string().min(1).optional(),
    /** Asked of the broker; absent, the broker's own (60 s on RabbitMQ). 0 turns them off. */
    heartbeatSeconds: z.int().min(0).max(65_535).optional(),
    /** One connection attempt: TCP and the AMQP handshake. */
    connectTimeoutMs: z.int().min(1).max(HOUR_MS).optional(),
    recovery: brokerRecovery.optional(),
    publishBuffer: brokerPublishBuffer.optional(),
    /**
     * The broker's consumer_timeout (RabbitMQ's default: 30 min). Jobs that could outlast it are
     * refused or stopped in time; set it to what the broker is configured with.
     */
    consumerTimeoutMs: z
      .int()
      .min(1_000)
      .max(7 * 24 * HOUR_MS)
      .default(1_800_000),
  })
  .strict();

/** Where a key set's JSON comes from: a mounted secret file or an environment variable. */
const keySource = {
  /** Path of the key set's JSON (a mounted secret), relative to the config file. */
  keysFile: z.string().min(1).optional(),
  /** Name of the environment variable holding the key set's JSON. */
  keysEnv: z.string().min(1).optional(),
};

function oneKeySource(section: { keysFile?: string; keysEnv?: string }): boolean {
  return (section.keysFile === undefined) !== (section.keysEnv === undefined);
}
const ONE_KEY_SOURCE = { message: 'expected exactly one of keysFile and keysEnv' };

/**
 * Job signing (docs/signing.md). The keys come from a mounted secret file or an environment
 * variable, never from this file: the schema has no field that could hold one.
 */
const signing = z
  .object({
    /** Refuse unsigned jobs (default true); false lets them through while producers move over. */
    required: z.boolean().default(true),
    algorithms: z
      .array(z.enum(ALGORITHMS))
      .min(1)
      .default([...ALGORITHMS]),
    ...keySource,
    /** How far a job's signed creation time may lie from the worker's clock, either way. */
    windowMs: z
      .int()
      .min(1_000)
      .max(24 * HOUR_MS)
      .default(DEFAULT_WINDOW_MS),
    /** Message ids remembered against replays, in this worker's memory. */
    replayMaxEntries: z.int().min(1).max(10_000_000).default(DEFAULT_REPLAY_MAX_ENTRIES),
    /**
     * Where accepted message ids are remembered: this worker's memory, or the Redis named by
     * `dedupe.redisUrlEnv`, shared by the fleet so that a replay reaching another worker is
     * refused too.
     */
    replayStore: z.enum(['memory', 'redis']).default('memory'),
  })
  .strict()
  .refine(oneKeySource, ONE_KEY_SOURCE);

/**
 * Job body encryption (docs/encryption.md). Like signing keys, the keys come from a mounted
 * secret file or an environment variable, never from this file.
 */
const encryption = z
  .object({
    /** Refuse plaintext jobs (default false); set once every producer encrypts. */
    required: z.boolean().default(false),
    ...keySource,
  })
  .strict()
  .refine(oneKeySource, ONE_KEY_SOURCE);

export const workerConfigSchema = z
  .object({
    broker: broker.default({ url: 'amqp://127.0.0.1:5672', consumerTimeoutMs: 1_800_000 }),
    topology: z
      .object({
        prefix: name.default('warren'),
        queueType: z.enum(['quorum', 'classic']).default('quorum'),
        maxPriority: z.int().min(1).max(9).optional(),
        deliveryLimit: z.int().min(1).max(1_000).optional(),
      })
      .strict()
      .default({ prefix: 'warren', queueType: 'quorum' }),
    deadlines: z
      .object({
        skewMs: z.int().min(0).max(3_600_000).default(1_000),
        onExpired: z.enum(['dead-letter', 'drop']).default('dead-letter'),
      })
      .strict()
      .default({ skewMs: 1_000, onExpired: 'dead-letter' }),
    dedupe: z
      .object({
        store: z.enum(['none', 'memory', 'redis']).default('memory'),
        /** Name of the environment variable holding the Redis URL (it may carry a password). */
        redisUrlEnv: z.string().min(1).default('REDIS_URL'),
        leaseMs: z.int().min(1_000).default(300_000),
        ttlMs: z.int().min(1_000).default(86_400_000),
      })
      .strict()
      .default({ store: 'memory', redisUrlEnv: 'REDIS_URL', leaseMs: 300_000, ttlMs: 86_400_000 }),
    inference: z
      .object({
        use: z.enum(['local', 'remote']).default('local'),
        local: localInference.default({ dtype: 'fp32', onTooLong: 'truncate' }),
        remote: remoteInference.default({}),
      })
      .strict()
      .default({ use: 'local', local: { dtype: 'fp32', onTooLong: 'truncate' }, remote: {} }),
    handlers: z.array(handlerEntry).min(1),
    supervisor: z
      .object({
        /** How soon a crashed consumer starts again: initial delay, growing by multiplier. */
        backoff: z
          .object({
            initialDelayMs: z.int().min(0).max(HOUR_MS),
            multiplier: z.number().min(1).max(10),
            maxDelayMs: z.int().min(0).max(HOUR_MS),
          })
          .partial()
          .strict()
          .superRefine(delaysInOrder(DEFAULT_RESTART_BACKOFF))
          .default({}),
        /** At most maxRestarts restarts within withinMs; the next crash stops the worker (exit 1). */
        budget: z
          .object({ maxRestarts: z.int().min(0).max(1_000), withinMs: z.int().min(1).max(HOUR_MS) })
          .partial()
          .strict()
          .default({}),
      })
      .strict()
      .default({ backoff: {}, budget: {} }),
    health: z
      .object({
        /** Serves /livez, /readyz and /metrics on this port; absent, no server. 0: a free port. */
        port: z.int().min(0).max(65_535).optional(),
        host: z.string().min(1).default('0.0.0.0'),
        /** How long a handler may have no consumer on its queue before /livez fails. */
        livenessGraceMs: z.int().min(0).max(HOUR_MS).default(120_000),
      })
      .strict()
      .default({ host: '0.0.0.0', livenessGraceMs: 120_000 }),
    shutdown: z
      .object({ drainTimeoutMs: z.int().min(0).max(3_600_000).default(30_000) })
      .strict()
      .default({ drainTimeoutMs: 30_000 }),
    security: z
      .object({
        signing: signing.optional(),
        encryption: encryption.optional(),
        /**
         * Append-only JSON-lines audit log (docs/security.md#audit): one line per admission
         * decision, publish and credential change; relative to the config file.
         */
        auditLog: z.string().min(1).optional(),
        /**
         * The broker accounts of this fleet's workers, whose republished jobs (retries,
         * deferrals) are believed about their attempt and original producer. Default: the
         * account this worker connects as.
         */
        relays: z.array(z.string().min(1)).min(1).optional(),
      })
      .strict()
      .default({}),
    log: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
      })
      .strict()
      .default({ level: 'info' }),
  })
  .strict()
  .superRefine((config, context) => {
    for (const [index, handler] of config.handlers.entries()) {
      const maxSize = handler.batch?.maxSize;
      if (maxSize !== undefined && maxSize > handler.prefetch) {
        context.addIssue({
          code: 'custom',
          path: ['handlers', index, 'batch', 'maxSize'],
          message: `expected at most the handler's prefetch (${handler.prefetch}), found ${maxSize}: a batch cannot hold more jobs than the broker sends`,
        });
      }
    }
    if (config.topology.maxPriority !== undefined && config.topology.queueType === 'quorum') {
      context.addIssue({
        code: 'custom',
        path: ['topology', 'maxPriority'],
        message:
          'quorum queues have no priority on RabbitMQ 3.10: set topology.queueType "classic", ' +
          'or give urgent jobs a model type (queue) of their own',
      });
    }
  });

export type WorkerConfig = z.output<typeof workerConfigSchema>;
export type WorkerConfigInput = z.input<typeof workerConfigSchema>;

/**
 * Validates a parsed config. Relative paths (plugin modules, model folder, cache) are resolved
 * against `baseDir`. Throws {@link ConfigError} naming each bad field, what was expected and
 * what was found.
 */
export function parseConfig(value: unknown, baseDir: string): WorkerConfig {
  const parsed = workerConfigSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    const issues = withoutQuotedSecrets(parsed.error);
    throw new ConfigError(describeIssues(issues, { root: 'config', showValues: true }));
  }
  const config = parsed.data;
  for (const handler of config.handlers) {
    if (handler.module.startsWith('.')) handler.module = resolve(baseDir, handler.module);
  }
  const { local } = config.inference;
  if (local.modelPath !== undefined) local.modelPath = resolve(baseDir, local.modelPath);
  if (local.cacheDir !== undefined) local.cacheDir = resolve(baseDir, local.cacheDir);
  const credentials = config.broker.credentials;
  if (credentials?.file !== undefined) credentials.file = resolve(baseDir, credentials.file);
  for (const section of [config.security.signing, config.security.encryption]) {
    if (section?.keysFile !== undefined) section.keysFile = resolve(baseDir, section.keysFile);
  }
  if (config.security.auditLog !== undefined) {
    config.security.auditLog = resolve(baseDir, config.security.auditLog);
  }
  return config;
}

/** Reads and validates a JSON config file. */
export async function loadConfig(path: string): Promise<WorkerConfig> {
  const value = await readJsonFile(path, 'config file');
  return parseConfig(value, dirname(resolve(path)));
}

/**
 * The issues to report, without the value found where that value must not be quoted (a broker
 * URL may hold a password) or says nothing (the credentials checks name what they found).
 */
function withoutQuotedSecrets(error: z.ZodError): z.ZodError {
  return new z.ZodError(
    error.issues.map((issue) => {
      const [section, field] = issue.path;
      const hidden =
        section === 'broker' &&
        (field === 'url' || (field === 'credentials' && issue.code === 'custom'));
      if (!hidden) return issue;
      const { input: _input, ...rest } = issue;
      return rest;
    }),
  );
}

/** The JSON in the file at `path`; a `ConfigError` naming it as `what` when it cannot be had. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf-8');
  } catch (cause) {
    throw new ConfigError(`${what} ${path}: cannot be read (${describeThrown(cause)})`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${what} ${path}: expected JSON, found ${describeThrown(cause)}`, {
      cause,
    });
  }
}
