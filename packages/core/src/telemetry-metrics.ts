import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type UpDownCounter,
} from '@opentelemetry/api';
import type { SupervisorEvent } from './supervisor.ts';
import {
  ATTR,
  BATCH_SIZE_BUCKETS,
  HANDLER_DURATION_BUCKETS,
  INFERENCE_DURATION_BUCKETS,
  INSTRUMENTATION_SCOPE,
  METRICS,
} from './telemetry-names.ts';
import { guarded } from './trace-propagation.ts';
import type { ConnectionEvent, Transport } from './transport.ts';

/** Core's instruments, made on one meter provider. */
export interface Instruments {
  /** The API's no-op meter (no SDK registered): callers may skip work whose only use is these. */
  noop: boolean;
  received: Counter;
  finished: Counter;
  expired: Counter;
  inFlight: UpDownCounter;
  handlerDuration: Histogram;
  batchSize: Histogram;
  inferenceDuration: Histogram;
  actorCrashes: Counter;
  actorRestarts: Counter;
  supervisorEscalations: Counter;
  connectionEvents: Counter;
}

let current: { provider: MeterProvider; instruments: Instruments } | undefined;

/** The meter the API hands out while no SDK is registered (one shared instance). */
const NOOP_METER = createNoopMeter();

/**
 * Core's instruments on the meter provider registered now. The API hands out no-op meters until
 * an SDK registers one, and they stay no-op afterwards, so the instruments are made again when
 * the provider changes; checking that costs a lookup, not an allocation.
 */
export function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (current?.provider !== provider) {
    current = {
      provider,
      instruments: createInstruments(provider.getMeter(INSTRUMENTATION_SCOPE)),
    };
  }
  return current.instruments;
}

function createInstruments(meter: Meter): Instruments {
  const counter = (metric: (typeof METRICS)[keyof typeof METRICS]) =>
    meter.createCounter(metric.name, { unit: metric.unit, description: metric.description });
  const histogram = (metric: (typeof METRICS)[keyof typeof METRICS], buckets: number[]) =>
    meter.createHistogram(metric.name, {
      unit: metric.unit,
      description: metric.description,
      advice: { explicitBucketBoundaries: buckets },
    });

  const prefetch = meter.createObservableGauge(METRICS.prefetch.name, {
    unit: METRICS.prefetch.unit,
    description: METRICS.prefetch.description,
  });
  prefetch.addCallback((result) => {
    for (const source of prefetchSources) {
      guarded('prefetch gauge', () => result.observe(source.prefetch(), source.attributes));
    }
  });

  return {
    noop: meter === NOOP_METER,
    received: counter(METRICS.jobsReceived),
    finished: counter(METRICS.jobsFinished),
    expired: counter(METRICS.jobsExpired),
    inFlight: meter.createUpDownCounter(METRICS.jobsInFlight.name, {
      unit: METRICS.jobsInFlight.unit,
      description: METRICS.jobsInFlight.description,
    }),
    handlerDuration: histogram(METRICS.handlerDuration, HANDLER_DURATION_BUCKETS),
    batchSize: histogram(METRICS.batchSize, BATCH_SIZE_BUCKETS),
    inferenceDuration: histogram(METRICS.inferenceDuration, INFERENCE_DURATION_BUCKETS),
    actorCrashes: counter(METRICS.actorCrashes),
    actorRestarts: counter(METRICS.actorRestarts),
    supervisorEscalations: counter(METRICS.supervisorEscalations),
    connectionEvents: counter(METRICS.connectionEvents),
  };
}

/** A consumer whose prefetch the `warren.consumer.prefetch` gauge reports. */
export interface PrefetchSource {
  prefetch(): number;
  attributes: Attributes;
}

const prefetchSources = new Set<PrefetchSource>();

/** Reports `source` on the prefetch gauge until the returned function is called. */
export function watchPrefetch(source: PrefetchSource): () => void {
  prefetchSources.add(source);
  return () => prefetchSources.delete(source);
}

/**
 * Counts the supervisor's crashes, restarts and escalations (`warren.actor.crashes`,
 * `warren.actor.restarts`, `warren.supervisor.escalations`, by `warren.actor`). Returns a
 * function that stops counting.
 */
export function instrumentSupervisor(supervisor: {
  onEvent(listener: (event: SupervisorEvent) => void): () => void;
}): () => void {
  return supervisor.onEvent((event) => {
    guarded('supervisor metrics', () => recordSupervisorEvent(event));
  });
}

function recordSupervisorEvent(event: SupervisorEvent): void {
  const meters = instruments();
  if (event.type === 'crashed') meters.actorCrashes.add(1, { [ATTR.actor]: event.id });
  else if (event.type === 'restarted') meters.actorRestarts.add(1, { [ATTR.actor]: event.id });
  else {
    meters.supervisorEscalations.add(1, event.id === undefined ? {} : { [ATTR.actor]: event.id });
  }
}

const CONNECTION_EVENT_ATTRIBUTES: Record<ConnectionEvent['type'], Attributes> = {
  lost: { [ATTR.connectionEvent]: 'lost' },
  recovering: { [ATTR.connectionEvent]: 'recovering' },
  recovered: { [ATTR.connectionEvent]: 'recovered' },
  'gave-up': { [ATTR.connectionEvent]: 'gave-up' },
  rotated: { [ATTR.connectionEvent]: 'rotated' },
  'rotation-failed': { [ATTR.connectionEvent]: 'rotation-failed' },
};

/**
 * Counts one broker connection event on `warren.broker.connection.events`, by
 * `warren.connection.event`. Fits `Transport.onConnectionEvent` as it is; never throws.
 */
export function recordConnectionEvent(event: ConnectionEvent): void {
  guarded('connection metrics', () => {
    const attributes = CONNECTION_EVENT_ATTRIBUTES[event.type];
    if (attributes !== undefined) instruments().connectionEvents.add(1, attributes);
  });
}

/**
 * Counts a transport's connection events (see {@link recordConnectionEvent}) when it reports
 * them. Returns a function that stops counting.
 */
export function instrumentTransport(transport: Pick<Transport, 'onConnectionEvent'>): () => void {
  return transport.onConnectionEvent?.(recordConnectionEvent) ?? (() => {});
}
