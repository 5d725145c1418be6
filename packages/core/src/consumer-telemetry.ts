import {
  type Attributes,
  type Context,
  isSpanContextValid,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { reasonFor } from './failure-headers.ts';
import type { JobItem, JobOutcome } from './job-steps.ts';
import {
  type Instruments,
  instruments,
  type PrefetchSource,
  watchPrefetch,
} from './telemetry-metrics.ts';
import {
  ATTR,
  INTERRUPTED_ERROR,
  MESSAGING_OPERATION,
  MESSAGING_SYSTEM,
  SPAN_NAMES,
} from './telemetry-names.ts';
import {
  activeTracer,
  errorType,
  extractContext,
  failSpan,
  guarded,
  telemetryFailed,
} from './trace-propagation.ts';
import type { PublishTrace } from './traced-publish.ts';
import type { Delivery } from './transport.ts';

/** The trace of one job: its `process` span, and the context its steps run in. */
export interface JobTrace {
  readonly span: Span;
  /** The process span's context (with the message's baggage for a single delivery). */
  readonly context: Context;
  /** More than one delivery: the span links to each one's creation context, parent of none. */
  readonly batch: boolean;
}

/** One delivery's part in its job's trace. */
export interface ItemTrace {
  /** The creation context the delivery carried, with its baggage (the root context if none). */
  readonly message: Context;
  readonly job: JobTrace;
}

/** A handler call's span and the context the handler runs in. */
export interface HandlerTrace {
  readonly span: Span;
  readonly context: Context;
}

/**
 * A consumer's traces and metrics. The job steps call it at fixed points; each call is guarded,
 * so that neither a bug here nor a failing SDK can fail a job or stop the consumer. While no
 * tracer provider is registered it makes no spans and copies no headers, and while no meter
 * provider is, it records nothing: a job then costs a few calls and no allocation. Attribute
 * sets are made once per consumer, outcome and reason, and reused.
 */
export class ConsumerTelemetry {
  readonly #handler: string;
  readonly #queue: string;
  /** `warren.handler` and `warren.queue`: every metric of this consumer carries them. */
  readonly #attributes: Attributes;
  readonly #finished = new Map<JobOutcome, Map<string, Attributes>>();
  readonly #handled = new Map<string, Attributes>();

  constructor(handler: string, queue: string) {
    this.#handler = handler;
    this.#queue = queue;
    this.#attributes = { [ATTR.handler]: handler, [ATTR.queue]: queue };
  }

  /** Reports `prefetch()` on the prefetch gauge until the returned function is called. */
  watchPrefetch(prefetch: () => number): () => void {
    const source: PrefetchSource = { prefetch, attributes: this.#attributes };
    return watchPrefetch(source);
  }

  /** Deliveries the consumer took, batched or not. */
  received(count: number): void {
    try {
      instruments().received.add(count, this.#attributes);
    } catch (error) {
      telemetryFailed('job metrics', error);
    }
  }

  /**
   * A job starts: counts it in flight and, when tracing, starts its `process` span (kind
   * CONSUMER) and gives each item its trace. One delivery: the span is a child of the creation
   * context the message carried, so producer and consumer form one trace, and keeps its baggage.
   * A batch: the span cannot have a parent per delivery, so it starts a trace of its own and
   * links to each; it keeps baggage only when every delivery carried the same.
   */
  jobStarted(items: JobItem[]): JobTrace | undefined {
    try {
      const meters = instruments();
      if (!meters.noop) {
        meters.inFlight.add(items.length, this.#attributes);
        meters.batchSize.record(items.length, this.#attributes);
      }
    } catch (error) {
      telemetryFailed('job metrics', error);
    }
    const tracer = activeTracer();
    if (tracer === undefined) return undefined;
    try {
      return this.#startProcessSpan(tracer, items);
    } catch (error) {
      telemetryFailed('process span', error);
      for (const item of items) item.trace = undefined;
      return undefined;
    }
  }

  /** A job ends (settled, or a step threw): counts each outcome and ends the process span. */
  jobFinished(items: readonly JobItem[], job: JobTrace | undefined, error: unknown): void {
    try {
      const meters = instruments();
      if (!meters.noop) this.#countOutcomes(meters, items);
    } catch (failure) {
      telemetryFailed('job metrics', failure);
    }
    if (job !== undefined) guarded('process span', () => endProcessSpan(job, items, error));
  }

  /**
   * A handler call for `count` items, `first` among them, starts: its `handle` span (INTERNAL)
   * inside the job's, when tracing.
   */
  handlerStarted(first: JobItem, count: number): HandlerTrace | undefined {
    const job = first.trace?.job;
    const tracer = job === undefined ? undefined : activeTracer();
    if (job === undefined || tracer === undefined) return undefined;
    try {
      const attributes: Attributes = { [ATTR.handler]: this.#handler };
      if (count > 1) attributes[ATTR.messagingBatchMessageCount] = count;
      const span = tracer.startSpan(
        SPAN_NAMES.handle(this.#handler),
        { kind: SpanKind.INTERNAL, attributes },
        job.context,
      );
      return { span, context: trace.setSpan(job.context, span) };
    } catch (error) {
      telemetryFailed('handler span', error);
      return undefined;
    }
  }

  /**
   * A handler call ended after `ms`. `failed` is set when the call threw (`thrown`), after the
   * job step recorded what that means for the item (a failure, or an interruption).
   */
  handlerFinished(
    handler: HandlerTrace | undefined,
    ms: number,
    failed?: { item: JobItem; thrown: unknown },
  ): void {
    const type =
      failed === undefined
        ? undefined
        : (failed.item.failure?.code ??
          (failed.item.interrupted ? INTERRUPTED_ERROR : errorType(failed.thrown)));
    try {
      const meters = instruments();
      if (!meters.noop) meters.handlerDuration.record(ms / 1000, this.#handledAttributes(type));
    } catch (error) {
      telemetryFailed('handler metrics', error);
    }
    if (handler === undefined) return;
    guarded('handler span', () => {
      if (failed !== undefined && type !== undefined) failSpan(handler.span, failed.thrown, type);
      handler.span.end();
    });
  }

  /** Where the span of a publish for `item` belongs; undefined when not tracing. */
  publishTrace(item: JobItem): PublishTrace | undefined {
    const itemTrace = item.trace;
    if (itemTrace === undefined) return undefined;
    if (!itemTrace.job.batch) return { parent: itemTrace.job.context };
    // A batch's publishes stay in their own job's trace, linked to the batch that handled it.
    try {
      return { parent: itemTrace.message, links: [{ context: itemTrace.job.span.spanContext() }] };
    } catch (error) {
      telemetryFailed('publish span', error);
      return undefined;
    }
  }

  #startProcessSpan(tracer: Tracer, items: JobItem[]): JobTrace {
    const messages = items.map((item) => extractContext(item.delivery.properties?.headers));
    const batch = items.length > 1;
    const links: Link[] = [];
    messages.forEach((message, index) => {
      const context = trace.getSpanContext(message);
      if (context === undefined || !isSpanContextValid(context)) return;
      const messageId = items[index]!.delivery.properties?.messageId;
      links.push(
        batch && messageId !== undefined
          ? { context, attributes: { [ATTR.messagingMessageId]: messageId } }
          : { context },
      );
    });
    const parent = batch ? batchParent(items, messages) : messages[0]!;
    const span = tracer.startSpan(
      SPAN_NAMES.process(this.#queue),
      { kind: SpanKind.CONSUMER, attributes: this.#processAttributes(items), links },
      parent,
    );
    const job: JobTrace = { span, context: trace.setSpan(parent, span), batch };
    items.forEach((item, index) => {
      item.trace = { message: messages[index]!, job };
    });
    return job;
  }

  #processAttributes(items: readonly JobItem[]): Attributes {
    const attributes: Attributes = {
      [ATTR.messagingSystem]: MESSAGING_SYSTEM,
      [ATTR.messagingOperationType]: MESSAGING_OPERATION.process,
      [ATTR.messagingOperationName]: MESSAGING_OPERATION.process,
      [ATTR.handler]: this.#handler,
    };
    if (items.length > 1) {
      attributes[ATTR.messagingDestinationName] = this.#queue;
      attributes[ATTR.messagingBatchMessageCount] = items.length;
      return attributes;
    }
    const { delivery } = items[0]!;
    attributes[ATTR.messagingDestinationName] = consumeDestination(delivery, this.#queue);
    if (delivery.routingKey !== '') attributes[ATTR.messagingRoutingKey] = delivery.routingKey;
    attributes[ATTR.messagingDeliveryTag] = delivery.deliveryTag;
    const { messageId, correlationId } = delivery.properties ?? {};
    if (messageId !== undefined) attributes[ATTR.messagingMessageId] = messageId;
    if (correlationId !== undefined) attributes[ATTR.messagingConversationId] = correlationId;
    return attributes;
  }

  #countOutcomes(meters: Instruments, items: readonly JobItem[]): void {
    meters.inFlight.add(-items.length, this.#attributes);
    for (const item of items) {
      const outcome = item.outcome ?? 'requeued';
      const failure = item.failure ?? item.publishFailure;
      meters.finished.add(1, this.#finishedAttributes(outcome, failure && reasonFor(failure)));
      if (item.failure?.code === 'WARREN_DEADLINE_EXCEEDED' && outcome !== 'retried') {
        meters.expired.add(1, this.#attributes);
      }
    }
  }

  /** Attribute sets are made once per outcome and reason (both bounded), then reused. */
  #finishedAttributes(outcome: JobOutcome, reason: string | undefined): Attributes {
    let byReason = this.#finished.get(outcome);
    if (byReason === undefined) {
      byReason = new Map();
      this.#finished.set(outcome, byReason);
    }
    const key = reason ?? '';
    let attributes = byReason.get(key);
    if (attributes === undefined) {
      attributes = { ...this.#attributes, [ATTR.outcome]: outcome };
      if (reason !== undefined) attributes[ATTR.reason] = reason;
      byReason.set(key, attributes);
    }
    return attributes;
  }

  #handledAttributes(type: string | undefined): Attributes {
    if (type === undefined) return this.#attributes;
    let attributes = this.#handled.get(type);
    if (attributes === undefined) {
      attributes = { ...this.#attributes, [ATTR.errorType]: type };
      this.#handled.set(type, attributes);
    }
    return attributes;
  }
}

/**
 * RabbitMQ's consumer-side `messaging.destination.name`: `{exchange}:{routing key}:{queue}`, empty
 * parts left out, and the queue left out when it equals the routing key (a delivery from a delay
 * queue comes through the default exchange with the work queue's name as its key).
 */
function consumeDestination(delivery: Delivery, queue: string): string {
  const parts = [delivery.exchange, delivery.routingKey];
  if (queue !== delivery.routingKey) parts.push(queue);
  return parts.filter((part) => part !== '').join(':');
}

/** A batch's parent: the root, with the deliveries' baggage when they all carried the same. */
function batchParent(items: readonly JobItem[], messages: readonly Context[]): Context {
  const first = items[0]!.delivery.properties?.headers?.baggage;
  if (typeof first !== 'string') return ROOT_CONTEXT;
  const same = items.every((item) => item.delivery.properties?.headers?.baggage === first);
  const baggage = propagation.getBaggage(messages[0]!);
  return same && baggage !== undefined
    ? propagation.setBaggage(ROOT_CONTEXT, baggage)
    : ROOT_CONTEXT;
}

function endProcessSpan(job: JobTrace, items: readonly JobItem[], error: unknown): void {
  const { span } = job;
  const single = items.length === 1 ? items[0] : undefined;
  if (single?.envelope !== undefined) {
    span.setAttribute(ATTR.tenant, single.envelope.tenant);
    span.setAttribute(ATTR.jobAttempt, single.envelope.attempt);
  }
  const outcomes = new Set(items.map((item) => item.outcome ?? 'requeued'));
  if (outcomes.size === 1) span.setAttribute(ATTR.outcome, [...outcomes][0]!);

  const failed = items.find((item) => item.failure ?? item.publishFailure);
  const failure = failed?.failure ?? failed?.publishFailure;
  if (error !== undefined) failSpan(span, error);
  else if (failure !== undefined) {
    span.setAttribute(ATTR.reason, reasonFor(failure));
    failSpan(span, failure);
  }
  span.end();
}
