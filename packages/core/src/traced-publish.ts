import {
  type Attributes,
  type Context,
  type Link,
  type Span,
  SpanKind,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import {
  ATTR,
  DEFAULT_EXCHANGE,
  MESSAGING_OPERATION,
  MESSAGING_SYSTEM,
  SPAN_NAMES,
} from './telemetry-names.ts';
import {
  activeTracer,
  failSpan,
  guarded,
  injectContext,
  telemetryFailed,
} from './trace-propagation.ts';
import type { MessageProperties, PublishOptions, PublishTarget, Transport } from './transport.ts';

/** Where a traced publish's span belongs. */
export interface PublishTrace {
  /** The span's parent. */
  parent: Context;
  /** Spans it relates to without descending from them (a batch's process span). */
  links?: Link[];
}

/**
 * Publishes through `transport` inside a `send` span (kind PRODUCER) whose context the message
 * carries as its creation context: `traceparent`, `tracestate` and `baggage` are written into a
 * copy of its headers. The span ends when the broker confirms or refuses, and records a refusal.
 * With no tracer registered, or no `where`, it is a plain publish of `properties` as they are.
 */
export function publishTraced(
  transport: Transport,
  target: PublishTarget,
  body: Buffer,
  properties: MessageProperties,
  options: PublishOptions | undefined,
  where: PublishTrace | undefined,
): Promise<void> {
  const tracer = where === undefined ? undefined : activeTracer();
  if (tracer === undefined || where === undefined) {
    return transport.publish(target, body, properties, options);
  }
  return publishInSpan(tracer, transport, target, body, properties, options, where);
}

async function publishInSpan(
  tracer: Tracer,
  transport: Transport,
  target: PublishTarget,
  body: Buffer,
  properties: MessageProperties,
  options: PublishOptions | undefined,
  where: PublishTrace,
): Promise<void> {
  // Tracing must never fail a publish: if the span cannot be made, the message goes untraced.
  let span: Span | undefined;
  let sent = properties;
  try {
    const destination = sendDestination(target);
    const attributes = sendAttributes(target, properties, destination);
    const links = where.links ?? [];
    span = tracer.startSpan(
      SPAN_NAMES.send(destination.spanDestination),
      { kind: SpanKind.PRODUCER, attributes, links },
      where.parent,
    );
    const headers = { ...properties.headers };
    injectContext(trace.setSpan(where.parent, span), headers);
    sent = { ...properties, headers };
  } catch (error) {
    telemetryFailed('publish span', error);
  }

  try {
    await transport.publish(target, body, sent, options);
  } catch (error) {
    if (span !== undefined) guarded('publish span', () => failSpan(span, error));
    throw error;
  } finally {
    if (span !== undefined) guarded('publish span', () => span.end());
  }
}

interface SendDestination {
  /** `messaging.destination.name`. */
  name: string;
  /** What the span name shows; undefined for a server-named (anonymous) reply queue. */
  spanDestination: string | undefined;
  anonymous: boolean;
}

/**
 * Names a publish's destination. Through the default exchange the routing key is a queue: ours
 * (a delay queue, the work queue) or a requester's reply queue, which the broker may have named
 * (`amq.gen-*`, direct reply-to) and then stays out of the span name.
 */
function sendDestination({ exchange, routingKey }: PublishTarget): SendDestination {
  if (exchange !== '') {
    const name = routingKey === '' ? exchange : `${exchange}:${routingKey}`;
    return { name, spanDestination: exchange, anonymous: false };
  }
  if (routingKey === '')
    return { name: DEFAULT_EXCHANGE, spanDestination: undefined, anonymous: false };
  const anonymous = routingKey.startsWith('amq.');
  return { name: routingKey, spanDestination: anonymous ? undefined : routingKey, anonymous };
}

function sendAttributes(
  target: PublishTarget,
  properties: MessageProperties,
  destination: SendDestination,
): Attributes {
  const attributes: Attributes = {
    [ATTR.messagingSystem]: MESSAGING_SYSTEM,
    [ATTR.messagingOperationType]: MESSAGING_OPERATION.send,
    [ATTR.messagingOperationName]: MESSAGING_OPERATION.send,
    [ATTR.messagingDestinationName]: destination.name,
  };
  if (target.routingKey !== '') attributes[ATTR.messagingRoutingKey] = target.routingKey;
  if (destination.anonymous) attributes[ATTR.messagingDestinationAnonymous] = true;
  if (properties.messageId !== undefined) {
    attributes[ATTR.messagingMessageId] = properties.messageId;
  }
  if (properties.correlationId !== undefined) {
    attributes[ATTR.messagingConversationId] = properties.correlationId;
  }
  return attributes;
}
