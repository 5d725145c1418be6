import { randomBytes } from 'node:crypto';
import { type Clock, definedProperties, type MessageProperties } from '@warren/core';
import { BrokerRefusalError } from './broker-refusal.ts';
import { type DeathReason, deadLettered, isDeathCycle } from './dead-letter.ts';
import { Exchange, type ExchangeType } from './exchange.ts';
import { MemoryQueue, type QueueHost } from './memory-queue.ts';
import { inequivalence, type QueueDeclaration, readQueueSettings } from './queue-arguments.ts';
import type { StoredMessage } from './stored-message.ts';

/** What a queue declaration answers, as AMQP's `queue.declare-ok`. */
export interface DeclaredQueue {
  queue: string;
  messageCount: number;
  consumerCount: number;
}

/** The exchanges RabbitMQ declares in every virtual host. */
const BUILT_IN_EXCHANGES: [string, ExchangeType][] = [
  ['amq.direct', 'direct'],
  ['amq.topic', 'topic'],
  ['amq.fanout', 'fanout'],
];

const RESERVED_PREFIX = 'amq.';

/**
 * The exchanges and queues of the embedded broker (RabbitMQ's virtual host `/`): declaring,
 * binding, routing a publish, and routing what queues dead-letter. Refusals are
 * {@link BrokerRefusalError}s worded as RabbitMQ words them.
 */
export class Vhost implements QueueHost {
  readonly #exchanges = new Map<string, Exchange>();
  readonly #queues = new Map<string, MemoryQueue>();

  constructor(readonly clock: Clock) {
    for (const [name, type] of BUILT_IN_EXCHANGES) {
      this.#exchanges.set(name, new Exchange(name, type));
    }
  }

  /** Declares an exchange; declaring an existing one with another type is refused. */
  declareExchange(name: string, type: ExchangeType): void {
    const existing = this.#exchanges.get(name);
    if (existing !== undefined) {
      if (existing.type === type) return;
      throw new BrokerRefusalError(
        'PRECONDITION_FAILED',
        `inequivalent arg 'type' for exchange '${name}' in vhost '/': ` +
          `received '${type}' but current is '${existing.type}'`,
      );
    }
    if (name === '' || name.startsWith(RESERVED_PREFIX)) {
      throw new BrokerRefusalError(
        'ACCESS_REFUSED',
        `exchange name '${name}' contains reserved prefix 'amq.*'`,
      );
    }
    this.#exchanges.set(name, new Exchange(name, type));
  }

  /**
   * Declares a queue for `owner` (a connection); an empty name gets a server-made
   * `amq.gen-...` one. Declaring an existing queue again must match its first declaration.
   */
  declareQueue(name: string, declaration: QueueDeclaration, owner: object): DeclaredQueue {
    const existing = this.#queues.get(name);
    if (existing !== undefined) {
      this.#checkAccess(existing, owner);
      const mismatch = inequivalence(name, existing.declaration, declaration);
      if (mismatch !== undefined) throw new BrokerRefusalError('PRECONDITION_FAILED', mismatch);
      return describeQueue(existing);
    }
    if (name.startsWith(RESERVED_PREFIX)) {
      throw new BrokerRefusalError(
        'ACCESS_REFUSED',
        `queue name '${name}' contains reserved prefix 'amq.*'`,
      );
    }
    const queueName = name === '' ? serverNamed() : name;
    const settings = readQueueSettings(queueName, declaration);
    const exclusiveTo = declaration.exclusive === true ? owner : undefined;
    const queue = new MemoryQueue(queueName, declaration, settings, exclusiveTo, this);
    this.#queues.set(queueName, queue);
    return describeQueue(queue);
  }

  /** Binds a queue to an exchange; the default exchange takes no bindings. */
  bindQueue(queueName: string, exchangeName: string, key: string, owner: object): void {
    if (exchangeName === '') {
      throw new BrokerRefusalError(
        'ACCESS_REFUSED',
        'operation not permitted on the default exchange',
      );
    }
    const queue = this.queue(queueName, owner);
    this.#namedExchange(exchangeName).bind(queue.name, key);
  }

  /**
   * Routes a message to every queue its exchange's bindings match; one that matches none is
   * dropped (RabbitMQ confirms it without `mandatory`). A missing exchange is refused.
   * Returns how many queues received it.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: MessageProperties,
  ): number {
    checkExpiration(properties.expiration);
    const source = exchange === '' ? undefined : this.#namedExchange(exchange);
    const targets = this.#route(source, routingKey);
    const message: StoredMessage = {
      body: Buffer.from(body),
      properties: definedProperties(properties),
      exchange,
      routingKey,
      deaths: [],
    };
    for (const queue of targets) queue.enqueue(message);
    return targets.length;
  }

  /** A queue `owner` may use; refused if missing or exclusive to another connection. */
  queue(name: string, owner?: object): MemoryQueue {
    const queue = this.#queues.get(name);
    if (queue === undefined) {
      throw new BrokerRefusalError('NOT_FOUND', `no queue '${name}' in vhost '/'`);
    }
    if (owner !== undefined) this.#checkAccess(queue, owner);
    return queue;
  }

  findQueue(name: string): MemoryQueue | undefined {
    return this.#queues.get(name);
  }

  hasExchange(name: string): boolean {
    return name === '' || this.#exchanges.has(name);
  }

  /** Deletes a queue, cancelling its consumers; returns how many messages it held. */
  deleteQueue(name: string): number {
    const queue = this.#queues.get(name);
    if (queue === undefined) return 0;
    this.#queues.delete(name);
    for (const exchange of this.#exchanges.values()) exchange.forgetQueue(name);
    return queue.delete();
  }

  /** Deletes the queues exclusive to `owner`, as RabbitMQ does when its connection closes. */
  deleteQueuesOf(owner: object): void {
    for (const queue of [...this.#queues.values()]) {
      if (queue.owner === owner) this.deleteQueue(queue.name);
    }
  }

  /** Deletes an exchange and its bindings; a missing one is fine, a built-in one refused. */
  deleteExchange(name: string): void {
    if (name === '' || name.startsWith(RESERVED_PREFIX)) {
      throw new BrokerRefusalError(
        'ACCESS_REFUSED',
        `operation not permitted on exchange '${name || 'amq.default'}'`,
      );
    }
    this.#exchanges.delete(name);
  }

  deadLetter(queue: MemoryQueue, message: StoredMessage, reason: DeathReason): void {
    const exchangeName = queue.settings.deadLetterExchange;
    if (exchangeName === undefined) return;
    const exchange = this.#exchanges.get(exchangeName);
    // RabbitMQ drops a dead letter whose exchange is missing, as it drops an unroutable one.
    if (exchangeName !== '' && exchange === undefined) return;

    const routingKey = queue.settings.deadLetterRoutingKey ?? message.routingKey;
    const target = { exchange: exchangeName, routingKey };
    const dead = deadLettered(message, queue.name, reason, this.clock.now(), target);
    for (const destination of this.#route(exchange, routingKey)) {
      if (!isDeathCycle(dead.deaths, destination.name)) destination.enqueue(dead);
    }
  }

  /** The default exchange (`undefined` here) routes to the queue named by the key. */
  #route(exchange: Exchange | undefined, routingKey: string): MemoryQueue[] {
    if (exchange === undefined) {
      const queue = this.#queues.get(routingKey);
      return queue === undefined ? [] : [queue];
    }
    return exchange.route(routingKey).map((name) => this.#queues.get(name)!);
  }

  /** The exchange of that name; refused if missing. */
  #namedExchange(name: string): Exchange {
    const exchange = this.#exchanges.get(name);
    if (exchange === undefined) {
      throw new BrokerRefusalError('NOT_FOUND', `no exchange '${name}' in vhost '/'`);
    }
    return exchange;
  }

  #checkAccess(queue: MemoryQueue, owner: object): void {
    if (queue.owner === undefined || queue.owner === owner) return;
    throw new BrokerRefusalError(
      'RESOURCE_LOCKED',
      `cannot obtain exclusive access to locked queue '${queue.name}' in vhost '/'`,
    );
  }
}

function describeQueue(queue: MemoryQueue): DeclaredQueue {
  return {
    queue: queue.name,
    messageCount: queue.messageCount,
    consumerCount: queue.consumerCount,
  };
}

/** A name like RabbitMQ's for server-named queues: `amq.gen-` and 22 URL-safe characters. */
function serverNamed(): string {
  return `amq.gen-${randomBytes(16).toString('base64url')}`;
}

/** AMQP's `expiration` is a decimal count of milliseconds; RabbitMQ refuses anything else. */
function checkExpiration(expiration: string | undefined): void {
  if (expiration === undefined || /^\d+$/.test(expiration)) return;
  throw new BrokerRefusalError('PRECONDITION_FAILED', `invalid expiration '${expiration}'`);
}
