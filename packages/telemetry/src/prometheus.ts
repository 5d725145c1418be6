import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { LogSink } from '@warren/core';

/** Metrics in the Prometheus text format, for a scrape endpoint that the caller serves. */
export interface PrometheusMetrics {
  /** The Content-Type to answer {@link PrometheusMetrics.collect}'s text with. */
  readonly contentType: string;
  /** Every metric's current value, in the Prometheus text exposition format (0.0.4). */
  collect(): Promise<string>;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * A pull reader for the meter provider and the text it produces. The exporter's own HTTP server
 * is never started: the worker serves the text on its health port, so there is one port to open.
 */
export function prometheusReader(logger: LogSink): {
  reader: PrometheusExporter;
  metrics: PrometheusMetrics;
} {
  const reader = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const metrics: PrometheusMetrics = {
    contentType: PROMETHEUS_CONTENT_TYPE,
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      // A failing callback costs its own metric, not the scrape.
      if (errors.length > 0) {
        logger.warn({ errors: errors.length, err: errors[0] }, 'metrics collected with errors');
      }
      return serializer.serialize(resourceMetrics);
    },
  };
  return { reader, metrics };
}
