import { ConfigError, describeIssues, retryPolicyOverrides, SCOPE_PATTERN } from '@warren/core';
import { z } from 'zod';

/** A model type, as `defineHandler` accepts it: dots are allowed, so names are regex-escaped. */
const MODEL_TYPE = /^[a-z0-9][a-z0-9._-]{0,99}$/;
/** A topology prefix, as the worker config accepts it. */
const PREFIX = /^[a-z0-9][a-z0-9._-]{0,99}$/;
/**
 * A broker account. Narrower than RabbitMQ allows, so that each name maps to one environment
 * variable for its password and needs no care beyond quoting in a shell script.
 */
export const ACCOUNT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
const TEAM = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$/;
/** Anything but control characters, and not an option to rabbitmqctl. */
const VHOST = /^[^\p{Cc}-][^\p{Cc}]{0,254}$/u;
/** A queue a result reader names; `amq.` names are the broker's own. */
const READER_QUEUE = /^(?!amq\.)[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;

const account = z.string().regex(ACCOUNT_PATTERN, {
  message:
    "expected 1 to 128 letters, digits, '.', '_', '@', '+' or '-', starting with a letter or digit",
});
const modelTypes = z
  .array(
    z.string().regex(MODEL_TYPE, {
      message: "expected lower-case letters, digits, '.', '_' or '-' (1 to 100)",
    }),
  )
  .min(1);
const scopes = z
  .array(
    z.string().regex(SCOPE_PATTERN, {
      message: "expected lower-case letters, digits, '-' or '_' (1 to 63)",
    }),
  )
  .min(1);

/** Field by field over the handler's policy, as in the worker config: it decides the delay queues. */
const retry = retryPolicyOverrides;

const worker = z
  .object({
    user: account,
    modelTypes,
    /** The scopes it serves: one queue each per model type. */
    scopes,
    /** Overrides the declaration's `retry` for this account's queues. */
    retry: retry.optional(),
  })
  .strict();

const producer = z
  .object({
    user: account,
    modelTypes,
    /** The scopes it may publish: RabbitMQ refuses any other routing key on the jobs exchange. */
    scopes,
    /** Whether it declares server-named exclusive reply queues (`amq.gen-*`) to wait for results. */
    replyQueues: z.boolean().default(false),
  })
  .strict();

const resultReader = z
  .object({
    user: account,
    /** Whose results it may bind: `<modelType>.<tenant>` or `<modelType>.*` on the results exchange. */
    modelTypes,
    /** The durable queues it declares, binds to the results exchange and consumes. */
    queues: z
      .array(
        z.string().regex(READER_QUEUE, {
          message:
            "expected letters, digits, '.', '_', ':' or '-' (1 to 255), not starting with amq.",
        }),
      )
      .min(1),
  })
  .strict();

const team = z
  .object({
    /** A label for the generated comments; each team's once. */
    name: z.string().regex(TEAM, {
      message: "expected 1 to 63 letters, digits, spaces, '.', '_' or '-'",
    }),
    workers: z.array(worker).default([]),
    producers: z.array(producer).default([]),
    resultReaders: z.array(resultReader).default([]),
  })
  .strict()
  .refine((t) => t.workers.length + t.producers.length + t.resultReaders.length > 0, {
    message: 'expected at least one worker, producer or result reader',
  });

export const permissionsDeclarationSchema = z
  .object({
    /** The virtual host all of it lives in. */
    vhost: z.string().regex(VHOST, {
      message: "expected 1 to 255 characters, no control characters, not starting with '-'",
    }),
    /** The topology prefix the workers and producers use (default `warren`). */
    prefix: z
      .string()
      .regex(PREFIX, { message: "expected lower-case letters, digits, '.', '_' or '-'" })
      .default('warren'),
    /** The retry policy the workers run with; it names their delay queues. */
    retry: retry.optional(),
    teams: z.array(team).min(1),
  })
  .strict()
  .superRefine((declaration, context) => {
    const seen = new Map<string, number>();
    for (const [index, { name }] of declaration.teams.entries()) {
      const first = seen.get(name);
      if (first !== undefined) {
        context.addIssue({
          code: 'custom',
          path: ['teams', index, 'name'],
          input: name,
          message: `expected each team name once; teams[${first}] has it already`,
        });
      }
      seen.set(name, index);
    }
  });

/** A validated declaration, defaults filled in. */
export type PermissionsDeclaration = z.output<typeof permissionsDeclarationSchema>;
/** A declaration as written. */
export type PermissionsDeclarationInput = z.input<typeof permissionsDeclarationSchema>;

/**
 * Validates a parsed declaration. Throws {@link ConfigError} naming each bad field, what was
 * expected and what was found (`declaration.teams[0].workers[1].user: ...`).
 */
export function parsePermissionsDeclaration(value: unknown): PermissionsDeclaration {
  const parsed = permissionsDeclarationSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(describeIssues(parsed.error, { root: 'declaration', showValues: true }));
  }
  return parsed.data;
}
