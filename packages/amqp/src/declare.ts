import type { QueueTopology } from '@warren/core';
import type { Channel, ChannelModel } from 'amqplib';
import { describeCause, replyCodeOf } from './cause.ts';
import { closeQuietly } from './closing.ts';

/** AMQP's reply code when a declaration does not match what the broker already has. */
const PRECONDITION_FAILED = 406;
const ACCESS_REFUSED = 403;

/**
 * Declares a model type's exchanges, queues and bindings, and returns the retired bindings this
 * account may not remove; declaring the same topology again changes nothing. Runs on a channel
 * of its own because the broker closes the channel of a declaration that contradicts an existing
 * entity, and that must not take the publish channel down with it.
 */
export async function declareTopology(
  connection: ChannelModel,
  topology: QueueTopology,
): Promise<string[]> {
  const channel = await connection.createChannel();
  // The failed declaration's promise carries the reason; the event would otherwise be unhandled.
  channel.on('error', () => {});

  try {
    await declareExchange(channel, topology.jobsExchange, 'topic');
    await declareExchange(channel, topology.deadLetterExchange, 'direct');
    await declareExchange(channel, topology.resultsExchange, 'topic');
    await declareQueues(channel, topology);
  } finally {
    await closeQuietly(channel);
  }
  return removeRetiredBindings(connection, topology);
}

/**
 * Removes bindings an earlier version made (see `QueueTopology.retiredBindings`), each on a
 * channel of its own: an account whose topic permissions do not cover the old pattern (as
 * least-privilege ones do not) is refused, which closes the channel, and the binding is left for
 * an operator to remove. RabbitMQ answers an unbind of a binding that does not exist with success.
 */
async function removeRetiredBindings(
  connection: ChannelModel,
  topology: QueueTopology,
): Promise<string[]> {
  const left: string[] = [];
  for (const pattern of topology.retiredBindings ?? []) {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    try {
      await channel.unbindQueue(topology.queue, topology.jobsExchange, pattern);
    } catch (cause) {
      if (replyCodeOf(cause) !== ACCESS_REFUSED) throw cause;
      left.push(pattern);
    } finally {
      await closeQuietly(channel);
    }
  }
  return left;
}

async function declareQueues(channel: Channel, topology: QueueTopology): Promise<void> {
  const queueType = topology.queueType;
  const workArgs: Record<string, string | number> = {
    'x-queue-type': queueType,
    // A nack without requeue, or too many deliveries, then lands in the dead-letter queue below.
    'x-dead-letter-exchange': topology.deadLetterExchange,
    'x-dead-letter-routing-key': topology.deadLetterRoutingKey,
  };
  if (topology.maxPriority !== undefined) workArgs['x-max-priority'] = topology.maxPriority;
  if (topology.deliveryLimit !== undefined) workArgs['x-delivery-limit'] = topology.deliveryLimit;
  await declareQueue(channel, topology.queue, workArgs);
  for (const pattern of topology.bindings) {
    await channel.bindQueue(topology.queue, topology.jobsExchange, pattern);
  }

  await declareQueue(channel, topology.deadLetterQueue, { 'x-queue-type': queueType });
  await channel.bindQueue(
    topology.deadLetterQueue,
    topology.deadLetterExchange,
    topology.deadLetterRoutingKey,
  );

  for (const { name, delayMs } of topology.delayQueues) {
    // Expired messages go back to the work queue through the default exchange.
    await declareQueue(channel, name, {
      'x-queue-type': queueType,
      'x-message-ttl': delayMs,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': topology.queue,
    });
  }
}

async function declareExchange(channel: Channel, name: string, type: string): Promise<void> {
  try {
    await channel.assertExchange(name, type, { durable: true });
  } catch (cause) {
    throw declarationError(`exchange "${name}"`, `durable, type ${type}`, cause);
  }
}

async function declareQueue(
  channel: Channel,
  name: string,
  args: Record<string, string | number>,
): Promise<void> {
  try {
    await channel.assertQueue(name, { durable: true, arguments: args });
  } catch (cause) {
    const expected = Object.entries(args).map(([key, value]) => `${key} ${value}`);
    throw declarationError(`queue "${name}"`, ['durable', ...expected].join(', '), cause);
  }
}

function declarationError(entity: string, expected: string, cause: unknown): Error {
  const message =
    replyCodeOf(cause) === PRECONDITION_FAILED
      ? `${entity} already exists with other arguments than Warren declares (${expected}); ` +
        `delete it or align it: ${describeCause(cause)}`
      : `declaring ${entity} failed: ${describeCause(cause)}`;
  return new Error(message, { cause });
}
