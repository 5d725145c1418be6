import { BrokerRefusalError } from './broker-refusal.ts';

/** A queue argument's value: the AMQP strings and integers Warren's declarations use. */
export type QueueArgumentValue = string | number;

/** `x-` arguments of a queue declaration, as RabbitMQ receives them. */
export type QueueArguments = Record<string, QueueArgumentValue>;

/** How a queue is declared; absent fields take amqplib's defaults. */
export interface QueueDeclaration {
  /** Default true, as amqplib's `assertQueue` sends. */
  durable?: boolean;
  /** Owned by the declaring connection and deleted with it. Default false. */
  exclusive?: boolean;
  arguments?: QueueArguments;
}

/** What a queue's arguments make it do. */
export interface QueueSettings {
  queueType: 'classic' | 'quorum';
  /** `x-message-ttl`: milliseconds a message may wait in the queue. */
  messageTtl?: number;
  /** `x-dead-letter-exchange`: where rejected, expired and over-delivered messages go. */
  deadLetterExchange?: string;
  /** `x-dead-letter-routing-key`: their routing key there; their own when absent. */
  deadLetterRoutingKey?: string;
  /** `x-max-priority`: classic queues only. */
  maxPriority?: number;
  /** `x-delivery-limit`: quorum queues only. */
  deliveryLimit?: number;
}

/** The arguments RabbitMQ compares when a queue is declared again. */
const COMPARED = [
  'x-queue-type',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-priority',
  'x-delivery-limit',
] as const;

/** Arguments RabbitMQ acts on that this broker does not; refused rather than ignored. */
const NOT_IMPLEMENTED = [
  'x-expires',
  'x-max-length',
  'x-max-length-bytes',
  'x-overflow',
  'x-single-active-consumer',
  'x-dead-letter-strategy',
];

/** The highest `x-max-priority` RabbitMQ accepts. */
const PRIORITY_CEILING = 255;

/**
 * Reads and checks a declaration the way RabbitMQ 3.10 does; throws {@link BrokerRefusalError}
 * (`PRECONDITION_FAILED`) for an argument of the wrong type or range, or one the queue type
 * does not take (`x-max-priority` on a quorum queue, `x-delivery-limit` on a classic one).
 */
export function readQueueSettings(queue: string, declaration: QueueDeclaration): QueueSettings {
  const args = declaration.arguments ?? {};
  const invalid = (name: string, why: string): BrokerRefusalError =>
    new BrokerRefusalError(
      'PRECONDITION_FAILED',
      `invalid arg '${name}' for queue '${queue}' in vhost '/': ${why}`,
    );

  for (const name of NOT_IMPLEMENTED) {
    if (name in args) throw invalid(name, 'the embedded broker does not implement it');
  }
  const queueType = args['x-queue-type'] ?? 'classic';
  if (queueType !== 'classic' && queueType !== 'quorum') {
    throw invalid('x-queue-type', `expected classic or quorum, got ${String(queueType)}`);
  }
  const settings: QueueSettings = { queueType };
  const ttl = integerArg(args, 'x-message-ttl', 0, Number.MAX_SAFE_INTEGER, invalid);
  if (ttl !== undefined) settings.messageTtl = ttl;
  const exchange = stringArg(args, 'x-dead-letter-exchange', invalid);
  if (exchange !== undefined) settings.deadLetterExchange = exchange;
  const routingKey = stringArg(args, 'x-dead-letter-routing-key', invalid);
  if (routingKey !== undefined) settings.deadLetterRoutingKey = routingKey;

  const maxPriority = integerArg(args, 'x-max-priority', 0, PRIORITY_CEILING, invalid);
  if (maxPriority !== undefined) {
    if (queueType === 'quorum') throw wrongType('x-max-priority', queue, 'rabbit_quorum_queue');
    settings.maxPriority = maxPriority;
  }
  const deliveryLimit = integerArg(args, 'x-delivery-limit', 0, Number.MAX_SAFE_INTEGER, invalid);
  if (deliveryLimit !== undefined) {
    if (queueType === 'classic') throw wrongType('x-delivery-limit', queue, 'rabbit_classic_queue');
    settings.deliveryLimit = deliveryLimit;
  }
  if (queueType === 'quorum') checkQuorumProperties(queue, declaration);
  return settings;
}

/**
 * Why a second declaration does not match the queue's first one, in RabbitMQ's words, or
 * undefined when it matches. Arguments RabbitMQ does not compare may differ.
 */
export function inequivalence(
  queue: string,
  current: QueueDeclaration,
  received: QueueDeclaration,
): string | undefined {
  const where = `for queue '${queue}' in vhost '/'`;
  const currentDurable = current.durable ?? true;
  const receivedDurable = received.durable ?? true;
  if (currentDurable !== receivedDurable) {
    return `inequivalent arg 'durable' ${where}: received '${receivedDurable}' but current is '${currentDurable}'`;
  }
  for (const name of COMPARED) {
    const was = current.arguments?.[name];
    const now = received.arguments?.[name];
    if (was === now || isClassicEitherWay(name, was, now)) continue;
    const describe = (value: QueueArgumentValue | undefined): string =>
      value === undefined ? 'none' : `'${value}'`;
    return `inequivalent arg '${name}' ${where}: received ${describe(now)} but current is ${describe(was)}`;
  }
  return undefined;
}

/** A queue declared without a type is classic, so naming that type, or not, is no change. */
function isClassicEitherWay(
  name: string,
  was: QueueArgumentValue | undefined,
  now: QueueArgumentValue | undefined,
): boolean {
  return (
    name === 'x-queue-type' && (was ?? 'classic') === 'classic' && (now ?? 'classic') === 'classic'
  );
}

function checkQuorumProperties(queue: string, declaration: QueueDeclaration): void {
  const property = declaration.durable === false ? 'non-durable' : undefined;
  const exclusive = declaration.exclusive === true ? 'exclusive-owner' : undefined;
  const refused = property ?? exclusive;
  if (refused === undefined) return;
  throw new BrokerRefusalError(
    'PRECONDITION_FAILED',
    `invalid property '${refused}' for queue '${queue}' in vhost '/'`,
  );
}

function wrongType(name: string, queue: string, type: string): BrokerRefusalError {
  return new BrokerRefusalError(
    'PRECONDITION_FAILED',
    `invalid arg '${name}' for queue '${queue}' in vhost '/' of queue type ${type}`,
  );
}

type Invalid = (name: string, why: string) => BrokerRefusalError;

function integerArg(
  args: QueueArguments,
  name: string,
  min: number,
  max: number,
  invalid: Invalid,
): number | undefined {
  const value = args[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalid(name, `expected integer, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) throw invalid(name, `expected ${min} to ${max}, got ${value}`);
  return value;
}

function stringArg(args: QueueArguments, name: string, invalid: Invalid): string | undefined {
  const value = args[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(name, `expected a string, got ${value}`);
  return value;
}
