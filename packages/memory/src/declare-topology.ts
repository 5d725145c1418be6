import type { QueueTopology } from '@warren/core';
import { describeThrown } from '@warren/core';
import type { BrokerConnection } from './broker-connection.ts';
import { BrokerRefusalError } from './broker-refusal.ts';
import type { ExchangeType } from './exchange.ts';
import type { QueueArguments } from './queue-arguments.ts';

/**
 * Declares a model type's exchanges, queues and bindings exactly as `@warren/amqp` declares them
 * on RabbitMQ (same arguments, same order, same errors); declaring it again changes nothing.
 */
export function declareTopology(connection: BrokerConnection, topology: QueueTopology): void {
  declareExchange(connection, topology.jobsExchange, 'topic');
  declareExchange(connection, topology.deadLetterExchange, 'direct');
  declareExchange(connection, topology.resultsExchange, 'topic');
  declareQueues(connection, topology);
}

function declareQueues(connection: BrokerConnection, topology: QueueTopology): void {
  const queueType = topology.queueType;
  const workArgs: QueueArguments = {
    'x-queue-type': queueType,
    // A nack without requeue, or too many deliveries, then lands in the dead-letter queue below.
    'x-dead-letter-exchange': topology.deadLetterExchange,
    'x-dead-letter-routing-key': topology.deadLetterRoutingKey,
  };
  if (topology.maxPriority !== undefined) workArgs['x-max-priority'] = topology.maxPriority;
  if (topology.deliveryLimit !== undefined) workArgs['x-delivery-limit'] = topology.deliveryLimit;
  declareQueue(connection, topology.queue, workArgs);
  for (const pattern of topology.bindings) {
    connection.bindQueue(topology.queue, topology.jobsExchange, pattern);
  }

  declareQueue(connection, topology.deadLetterQueue, { 'x-queue-type': queueType });
  connection.bindQueue(
    topology.deadLetterQueue,
    topology.deadLetterExchange,
    topology.deadLetterRoutingKey,
  );

  for (const { name, delayMs } of topology.delayQueues) {
    // Expired messages go back to the work queue through the default exchange.
    declareQueue(connection, name, {
      'x-queue-type': queueType,
      'x-message-ttl': delayMs,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': topology.queue,
    });
  }
}

function declareExchange(connection: BrokerConnection, name: string, type: ExchangeType): void {
  try {
    connection.declareExchange(name, type);
  } catch (cause) {
    throw declarationError(`exchange "${name}"`, `durable, type ${type}`, cause);
  }
}

function declareQueue(connection: BrokerConnection, name: string, args: QueueArguments): void {
  try {
    connection.declareQueue(name, { durable: true, arguments: args });
  } catch (cause) {
    const expected = Object.entries(args).map(([key, value]) => `${key} ${value}`);
    throw declarationError(`queue "${name}"`, ['durable', ...expected].join(', '), cause);
  }
}

function declarationError(entity: string, expected: string, cause: unknown): Error {
  const mismatch = cause instanceof BrokerRefusalError && cause.kind === 'PRECONDITION_FAILED';
  const message = mismatch
    ? `${entity} already exists with other arguments than Warren declares (${expected}); ` +
      `delete it or align it: ${describeThrown(cause)}`
    : `declaring ${entity} failed: ${describeThrown(cause)}`;
  return new Error(message, { cause });
}
