/** Metrics in the Prometheus text format, for a scrape endpoint that the caller serves. */
export interface PrometheusMetrics {
  /** The Content-Type to answer {@link PrometheusMetrics.collect}'s text with. */
  readonly contentType: string;
  /** Every metric's current value, in the Prometheus text exposition format (0.0.4). */
  collect(): Promise<string>;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
