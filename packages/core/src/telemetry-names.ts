/**
 * Every name Warren's telemetry uses, in one place: span names, attribute keys and values, and
 * metric names with their units. docs/observability.md lists them for operators.
 *
 * The `messaging.*`, `gen_ai.*` and `error.type` names follow OpenTelemetry semantic conventions
 * v1.41.0 (the messaging conventions with their RabbitMQ page, and the GenAI conventions), as
 * `@opentelemetry/semantic-conventions` 1.44.0 publishes them. Both groups are still marked
 * Development there. Not yet: the renames of the release after it (`messaging.system` to
 * `messaging.system.name`, `messaging.rabbitmq.*` to `rabbitmq.*`), because backends and the other
 * RabbitMQ instrumentations still read these; following them means changing this file alone.
 * `warren.*` names are Warren's own.
 */

/** The instrumentation scope of every tracer and meter in core. */
export const INSTRUMENTATION_SCOPE = '@warren/core';

/** Attribute keys. */
export const ATTR = {
  messagingSystem: 'messaging.system',
  /** `process` on consumer spans, `send` on publish spans. */
  messagingOperationType: 'messaging.operation.type',
  messagingOperationName: 'messaging.operation.name',
  /**
   * RabbitMQ's rule: `{exchange}:{routing key}` when publishing, `{exchange}:{routing key}:{queue}`
   * when consuming, empty parts left out, `amq.default` for the default exchange with no key.
   */
  messagingDestinationName: 'messaging.destination.name',
  /** True for a server-named reply queue (`amq.gen-*`, direct reply-to). */
  messagingDestinationAnonymous: 'messaging.destination.anonymous',
  messagingRoutingKey: 'messaging.rabbitmq.destination.routing_key',
  messagingDeliveryTag: 'messaging.rabbitmq.message.delivery_tag',
  messagingMessageId: 'messaging.message.id',
  /** The AMQP `correlation_id`: a result's names the job it answers. */
  messagingConversationId: 'messaging.message.conversation_id',
  /** Set on spans that cover more than one message only, as the conventions ask. */
  messagingBatchMessageCount: 'messaging.batch.message_count',
  /** A Warren error code, such as `WARREN_SCHEMA_VIOLATION`; `_OTHER` for anything else. */
  errorType: 'error.type',
  genAiOperationName: 'gen_ai.operation.name',
  genAiProviderName: 'gen_ai.provider.name',
  genAiRequestModel: 'gen_ai.request.model',
  /** The length of the vectors feature extraction returned. */
  genAiEmbeddingsDimensionCount: 'gen_ai.embeddings.dimension.count',
  tenant: 'warren.tenant',
  jobAttempt: 'warren.job.attempt',
  handler: 'warren.handler',
  /** The work queue a consumer takes jobs from (on metrics, where the destination is too fine). */
  queue: 'warren.queue',
  /** How a job ended: one of {@link JOB_OUTCOMES}. */
  outcome: 'warren.outcome',
  /** Why it failed, as in the `x-warren-reason` header (`schema-violation`, `expired`, ...). */
  reason: 'warren.reason',
  /** How many inputs one inference call carried. */
  inferenceBatchSize: 'warren.inference.batch_size',
  /** The supervised actor's id (the handler's name, in the worker). */
  actor: 'warren.actor',
  /**
   * A broker connection event: `lost`, `recovering`, `recovered`, `gave-up`, `rotated` or
   * `rotation-failed`.
   */
  connectionEvent: 'warren.connection.event',
} as const;

export const MESSAGING_SYSTEM = 'rabbitmq';

/** `messaging.operation.type` and `messaging.operation.name` values. */
export const MESSAGING_OPERATION = { process: 'process', send: 'send' } as const;

/** The conventions' name for the default exchange in `messaging.destination.name`. */
export const DEFAULT_EXCHANGE = 'amq.default';

/** `error.type` when the error carries no Warren code. */
export const OTHER_ERROR = '_OTHER';

/** `error.type` of a handler call cut short by shutdown (its job goes back to the queue). */
export const INTERRUPTED_ERROR = 'interrupted';

/**
 * `gen_ai.provider.name`. The conventions list no value for Hugging Face, so this is a custom one:
 * local transformers.js models and the Inference API both serve Hugging Face models.
 */
export const GEN_AI_PROVIDER = 'huggingface';

/**
 * `gen_ai.operation.name` per inference task: `embeddings` is the conventions' own; text
 * classification has no predefined value, so it gets a custom one.
 */
export const GEN_AI_OPERATION = {
  featureExtraction: 'embeddings',
  textClassification: 'text_classification',
} as const;

/** Every value of `warren.outcome`. */
export const JOB_OUTCOMES = [
  'succeeded',
  'retried',
  'deferred',
  'dead-lettered',
  'dropped',
  'duplicate',
  'requeued',
] as const;

/** Span names: `{operation} {destination}`, the destination kept low in cardinality. */
export const SPAN_NAMES = {
  /** A consumer's span for one delivery, or one batch of them, from receipt to ack. */
  process: (queue: string) => `process ${queue}`,
  /** The handler call inside it. */
  handle: (handler: string) => `handle ${handler}`,
  /** A publish: the exchange, or for the default exchange the queue; bare for a reply queue. */
  send: (destination: string | undefined) =>
    destination === undefined ? 'send' : `send ${destination}`,
  /** One inference call: `{gen_ai.operation.name} {gen_ai.request.model}`. */
  inference: (operation: string, model: string) => `${operation} ${model}`,
} as const;

/** What an instrument needs besides its kind. */
export interface InstrumentName {
  name: string;
  unit: string;
  description: string;
}

/** Metric names and units. Durations are in seconds, as the conventions require. */
export const METRICS = {
  jobsReceived: {
    name: 'warren.jobs.received',
    unit: '{job}',
    description: 'Deliveries a consumer took from its queue.',
  },
  jobsFinished: {
    name: 'warren.jobs.finished',
    unit: '{job}',
    description: 'Jobs settled, by outcome and, for failures, reason.',
  },
  jobsExpired: {
    name: 'warren.jobs.expired',
    unit: '{job}',
    description: 'Jobs found past their deadline (dead-lettered or dropped, per policy).',
  },
  jobsInFlight: {
    name: 'warren.jobs.in_flight',
    unit: '{job}',
    description: 'Deliveries in jobs that have started and not yet settled.',
  },
  handlerDuration: {
    name: 'warren.handler.duration',
    unit: 's',
    description: 'How long handler calls ran.',
  },
  batchSize: {
    name: 'warren.batch.size',
    unit: '{job}',
    description: 'Deliveries per job: 1, or the size of a batch.',
  },
  prefetch: {
    name: 'warren.consumer.prefetch',
    unit: '{message}',
    description: 'The prefetch a consumer works with now.',
  },
  actorCrashes: {
    name: 'warren.actor.crashes',
    unit: '{crash}',
    description: 'Supervised actors that crashed and will be restarted.',
  },
  actorRestarts: {
    name: 'warren.actor.restarts',
    unit: '{restart}',
    description: 'Supervised actors started again after a crash.',
  },
  supervisorEscalations: {
    name: 'warren.supervisor.escalations',
    unit: '{escalation}',
    description: 'Times a supervisor gave up on its actors.',
  },
  connectionEvents: {
    name: 'warren.broker.connection.events',
    unit: '{event}',
    description: 'Broker connection losses and recoveries.',
  },
  inferenceDuration: {
    name: 'gen_ai.client.operation.duration',
    unit: 's',
    description: 'How long inference calls took.',
  },
} as const satisfies Record<string, InstrumentName>;

/** The conventions' advised buckets for `gen_ai.client.operation.duration` (seconds). */
export const INFERENCE_DURATION_BUCKETS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/** Handler calls range from a no-op's microseconds to a large batch's minute. */
export const HANDLER_DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];
