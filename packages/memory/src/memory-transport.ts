import {
  type ConsumeOptions,
  checkPrefetch,
  type Delivery,
  describeThrown,
  IllegalStateError,
  type LogSink,
  type MessageProperties,
  PublishError,
  type PublishOptions,
  type PublishTarget,
  type QueueTopology,
  type Subscription,
  silentLogSink,
  type Transport,
  UnroutableError,
} from '@warren/core';
import type { BrokerConnection } from './broker-connection.ts';
import type { DeathRecord } from './dead-letter.ts';
import { declareTopology } from './declare-topology.ts';
import type { MemoryBroker } from './memory-broker.ts';
import { type Outcome, type Receipt, TransportConsumer } from './transport-consumer.ts';

export interface MemoryTransportOptions {
  /** Names the connection in log lines, as `@warren/amqp` names its broker connection. */
  connectionName?: string;
  /** A pino logger, or anything with its `debug`/`info`/`warn`/`error`; silent by default. */
  logger?: LogSink;
  /**
   * The account this transport says it is (default `guest`, as RabbitMQ's local default). The
   * embedded broker has no accounts and checks no `user_id`; workers stamp this one on the jobs
   * they republish, so that signed retries are told from replays as on RabbitMQ.
   */
  account?: string;
}

/**
 * - `idle`: not yet connected.
 * - `connected`: one broker connection; one consumer (channel) per subscription.
 * - `closed`: {@link MemoryTransport.close} was called.
 */
type TransportState = 'idle' | 'connected' | 'closed';

/**
 * Warren's {@link Transport} on a {@link MemoryBroker} in the same process. It follows
 * `@warren/amqp`'s rules (states, errors, settling, what a delivery carries), so a worker, a
 * demo or a plugin's tests run on it as they would on RabbitMQ; the shared conformance suite in
 * `@warren/testing` checks both.
 */
export class MemoryTransport implements Transport {
  readonly #broker: MemoryBroker;
  readonly #logger: LogSink;
  readonly #fields: { broker: string; connectionName?: string };
  readonly #consumers = new Set<TransportConsumer>();
  readonly #receipts = new WeakMap<Delivery, Receipt>();
  readonly #connectionName: string | undefined;
  #state: TransportState = 'idle';
  #connection: BrokerConnection | undefined;

  readonly account: string;

  constructor(broker: MemoryBroker, options: MemoryTransportOptions = {}) {
    this.#broker = broker;
    this.account = options.account ?? 'guest';
    this.#connectionName = options.connectionName;
    this.#logger = options.logger ?? silentLogSink;
    this.#fields =
      options.connectionName === undefined
        ? { broker: 'memory' }
        : { broker: 'memory', connectionName: options.connectionName };
  }

  /** Connects to the broker; further calls resolve at once. */
  async connect(): Promise<void> {
    if (this.#state === 'connected') return;
    this.#requireOpen('connect');
    const name = this.#connectionName;
    this.#connection = this.#broker.connect(name === undefined ? {} : { name });
    this.#state = 'connected';
    this.#logger.info(this.#fields, 'broker connected');
  }

  /** Declares the model type's exchanges, queues and bindings; idempotent. */
  async declare(topology: QueueTopology): Promise<void> {
    const connection = this.#requireConnected('declare');
    declareTopology(connection, topology);
    this.#logger.debug({ ...this.#fields, queue: topology.queue }, 'topology declared');
  }

  /** Declares an exclusive, server-named queue that the broker deletes with this transport. */
  async declareReplyQueue(): Promise<string> {
    const connection = this.#requireConnected('declareReplyQueue');
    return connection.declareQueue('', { exclusive: true, durable: false }).queue;
  }

  /** Consumes `queue` with manual acknowledgement and the given prefetch. */
  async consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Subscription> {
    checkPrefetch(options.prefetch);
    const connection = this.#requireConnected('consume');
    const consumer = new TransportConsumer({
      connection,
      queue,
      prefetch: options.prefetch,
      onDelivery,
      onCancel: options.onCancel,
      receipts: this.#receipts,
      logger: this.#logger,
      fields: this.#fields,
      onClosed: (closed) => this.#consumers.delete(closed),
    });
    this.#consumers.add(consumer);
    return {
      cancel: async () => consumer.cancel(),
      setPrefetch: async (count) => {
        checkPrefetch(count);
        consumer.setPrefetch(count);
      },
    };
  }

  /**
   * Publishes; resolves once the message is in every queue it routes to. With `mandatory`, a
   * message no queue receives rejects with {@link UnroutableError}.
   */
  async publish(
    target: PublishTarget,
    body: Buffer,
    properties: MessageProperties,
    options: PublishOptions = {},
  ): Promise<void> {
    const connection = this.#requireConnected('publish');
    const where = `exchange "${target.exchange}" with routing key "${target.routingKey}"`;
    let queues: number;
    try {
      queues = connection.publish(target, body, properties);
    } catch (cause) {
      throw new PublishError(`publish to ${where} failed: ${describeThrown(cause)}`, { cause });
    }
    if (options.mandatory && queues === 0) {
      throw new UnroutableError(`no queue is bound for ${where}`);
    }
  }

  /** Acknowledges a delivery. Never throws; a second settle is ignored. */
  ack(delivery: Delivery): void {
    this.#settle(delivery, { kind: 'ack' });
  }

  /** Rejects a delivery; without requeue it goes to the queue's dead-letter exchange. */
  nack(delivery: Delivery, options: { requeue: boolean }): void {
    this.#settle(delivery, { kind: 'nack', requeue: options.requeue });
  }

  /** Closes every consumer and the connection. Unsettled deliveries return to their queues. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const consumer of this.#consumers) consumer.close();
    this.#consumers.clear();
    this.#connection?.close();
    this.#logger.info(this.#fields, 'transport closed');
  }

  /**
   * The `x-death` history of a delivery this transport handed out, newest first: what RabbitMQ
   * carries in the `x-death` header, which Warren's deliveries leave out (as `@warren/amqp`'s
   * do). Empty for a message never dead-lettered, or a delivery of another transport.
   */
  deathHistory(delivery: Delivery): readonly DeathRecord[] {
    return this.#receipts.get(delivery)?.deaths ?? [];
  }

  #settle(delivery: Delivery, outcome: Outcome): void {
    const receipt = this.#receipts.get(delivery);
    if (receipt === undefined) {
      const fields = { ...this.#fields, queue: delivery.queue, deliveryTag: delivery.deliveryTag };
      this.#logger.debug(fields, 'settle ignored: delivery unknown to this transport');
      return;
    }
    receipt.consumer.settle(receipt, outcome);
  }

  #requireConnected(operation: string): BrokerConnection {
    this.#requireOpen(operation);
    if (this.#state !== 'connected' || this.#connection === undefined) {
      throw new IllegalStateError(
        `${operation}: expected a connected transport, found it ${this.#state}; ` +
          'call connect() first',
      );
    }
    return this.#connection;
  }

  #requireOpen(operation: string): void {
    if (this.#state === 'closed') {
      throw new IllegalStateError(`${operation}: expected an open transport, found it closed`);
    }
  }
}
