import type { QueueTopology, TopologyOptions, Transport } from '@warren/core';

/** A queue argument's value, as Warren's declarations send them. */
export type AdminArgumentValue = string | number;

/** The broker seen from outside the transport under test, as an operator would see it. */
export interface ConformanceAdmin {
  /** Messages waiting in the queue (unacknowledged ones not counted, as RabbitMQ counts). */
  messageCount(queue: string): Promise<number>;
  queueExists(queue: string): Promise<boolean>;
  /** Deletes the queue under its consumers. */
  deleteQueue(queue: string): Promise<void>;
  /** Declares a durable queue with exactly these arguments (deleted at clean-up if a topology's). */
  declareQueue(queue: string, args: Record<string, AdminArgumentValue>): Promise<void>;
}

/** Topology options the suite may set; the fixture supplies the prefix. */
export type ConformanceTopologyOptions = Omit<TopologyOptions, 'prefix'>;

/**
 * What one conformance test gets from the transport's side: made fresh before each test, and
 * cleaned up after it.
 */
export interface ConformanceFixture {
  /** A connected transport, closed at clean-up. */
  readonly transport: Transport;
  /** Another transport on the same broker (its own connection), not yet connected. */
  createTransport(): Transport;
  readonly admin: ConformanceAdmin;
  /**
   * A model type's topology under a prefix no other test uses (one prefix per fixture, so model
   * types in one test share their exchanges); everything it names is deleted at clean-up.
   */
  topology(modelType: string, options?: ConformanceTopologyOptions): QueueTopology;
  /** Closes the transports and deletes what the test declared. */
  cleanUp(): Promise<void>;
}
