import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type {
  ConsumeOptions,
  Delivery,
  MessageProperties,
  PublishOptions,
  PublishTarget,
  QueueTopology,
  Subscription,
  Transport,
} from '../src/transport.ts';

/**
 * The SDK as a worker registers it, with in-memory exporters: tracer provider, context manager
 * (so that the active context follows awaits), W3C trace-context and baggage propagators, and a
 * meter provider read on demand.
 */
export function registerSdk() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spans)],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  );
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

  return {
    spans,
    /** Finished spans with this name, oldest first. */
    named(name: string): ReadableSpan[] {
      return spans.getFinishedSpans().filter((span) => span.name === name);
    },
    /** The data points of one metric, as collected now. */
    async points(
      name: string,
    ): Promise<Array<{ attributes: Record<string, unknown>; value: unknown }>> {
      metricExporter.reset();
      await reader.forceFlush();
      const found = metricExporter
        .getMetrics()
        .flatMap((resource) => resource.scopeMetrics)
        .flatMap((scope) => scope.metrics)
        .filter((metric) => metric.descriptor.name === name);
      return found.flatMap((metric) =>
        metric.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value })),
      );
    },
    async shutdown(): Promise<void> {
      await tracerProvider.shutdown();
      await reader.shutdown();
      unregisterSdk();
    },
  };
}

export type Sdk = ReturnType<typeof registerSdk>;

export function unregisterSdk(): void {
  trace.disable();
  context.disable();
  propagation.disable();
  metrics.disable();
}

/** A message the fake broker took. */
export interface Published {
  target: PublishTarget;
  body: Buffer;
  properties: MessageProperties;
}

/**
 * A broker small enough for core's tests (which cannot use `@warren/memory`: it depends on
 * core). Jobs published to the jobs exchange, to the work queue or to a delay queue reach the
 * consumer (a delay queue's at once, through the default exchange as RabbitMQ dead-letters
 * them); everything published is recorded.
 */
export class FakeBroker implements Transport {
  readonly published: Published[] = [];
  readonly acked: Delivery[] = [];
  readonly nacked: Array<{ delivery: Delivery; requeue: boolean }> = [];
  #topology: QueueTopology | undefined;
  #consumer: { onDelivery: (delivery: Delivery) => void; options: ConsumeOptions } | undefined;
  #waiting: Delivery[] = [];
  #tag = 0;

  async connect(): Promise<void> {}

  async declare(topology: QueueTopology): Promise<void> {
    this.#topology = topology;
  }

  async declareReplyQueue(): Promise<string> {
    return 'amq.gen-reply';
  }

  async consume(
    _queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Subscription> {
    this.#consumer = { onDelivery, options };
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const delivery of waiting) onDelivery(delivery);
    return {
      cancel: async () => {
        this.#consumer = undefined;
      },
      setPrefetch: async () => {},
    };
  }

  async publish(
    target: PublishTarget,
    body: Buffer,
    properties: MessageProperties,
    _options?: PublishOptions,
  ): Promise<void> {
    this.published.push({ target, body, properties });
    const topology = this.#topology;
    if (topology === undefined) return;
    if (target.exchange === topology.jobsExchange) this.#deliver(target, body, properties);
    else if (target.exchange === '' && target.routingKey === topology.queue) {
      this.#deliver(target, body, properties);
    } else if (topology.delayQueues.some((queue) => queue.name === target.routingKey)) {
      const back = { exchange: '', routingKey: topology.queue };
      setTimeout(() => this.#deliver(back, body, properties), 1);
    }
  }

  /** Puts a message straight on the work queue, as a producer without Warren's client would. */
  inject(body: Buffer, properties: MessageProperties): void {
    this.#deliver({ exchange: '', routingKey: this.#topology?.queue ?? '' }, body, properties);
  }

  ack(delivery: Delivery): void {
    this.acked.push(delivery);
  }

  nack(delivery: Delivery, options: { requeue: boolean }): void {
    this.nacked.push({ delivery, requeue: options.requeue });
  }

  async close(): Promise<void> {}

  /** The broker cancels the consumer (its queue was deleted, say). */
  cancelConsumer(reason: string): void {
    this.#consumer?.options.onCancel?.(reason);
  }

  /** What was published to `exchange` (or, through the default exchange, to queue `name`). */
  to(name: string): Published[] {
    return this.published.filter(
      ({ target }) =>
        target.exchange === name || (target.exchange === '' && target.routingKey === name),
    );
  }

  #deliver(target: PublishTarget, body: Buffer, properties: MessageProperties): void {
    this.#tag += 1;
    const delivery: Delivery = {
      body,
      properties: { ...properties, headers: { ...properties.headers } },
      exchange: target.exchange,
      routingKey: target.routingKey,
      redelivered: false,
      deliveryTag: this.#tag,
      queue: this.#topology?.queue ?? '',
    };
    if (this.#consumer === undefined) this.#waiting.push(delivery);
    else this.#consumer.onDelivery(delivery);
  }
}

/** Resolves once `done()` holds; fails after `timeoutMs`. */
export async function waitFor(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
