import type { PermissionsPlan } from './plan.ts';

/** The parts of a RabbitMQ definitions file (`rabbitmqctl import_definitions`) that a plan fills. */
export interface RabbitDefinitions {
  users?: Array<{ name: string; tags: string[] }>;
  vhosts: Array<{ name: string }>;
  permissions: Array<{
    user: string;
    vhost: string;
    configure: string;
    write: string;
    read: string;
  }>;
  topic_permissions: Array<{
    user: string;
    vhost: string;
    exchange: string;
    write: string;
    read: string;
  }>;
}

export interface DefinitionsOptions {
  /**
   * Whether to list the accounts themselves (default true), without a password hash and with no
   * tags. RabbitMQ 3.10 then gives a new account a password nobody knows (set it with
   * `rabbitmqctl change_password`) and takes away the password of one that exists already: leave
   * them out (`false`) when applying the file again to a broker that has them.
   */
  users?: boolean;
}

/**
 * The plan as a definitions document. Importing adds and updates, it never removes: an account
 * or grant dropped from the declaration stays on the broker until deleted by hand.
 */
export function toDefinitions(
  plan: PermissionsPlan,
  options: DefinitionsOptions = {},
): RabbitDefinitions {
  const vhost = plan.vhost;
  return {
    ...(options.users === false
      ? {}
      : { users: plan.accounts.map(({ user }) => ({ name: user, tags: [] })) }),
    vhosts: [{ name: vhost }],
    permissions: plan.accounts.map(({ user, configure, write, read }) => ({
      user,
      vhost,
      configure,
      write,
      read,
    })),
    topic_permissions: plan.accounts.flatMap(({ user, topic }) =>
      topic.map(({ exchange, write, read }) => ({ user, vhost, exchange, write, read })),
    ),
  };
}
