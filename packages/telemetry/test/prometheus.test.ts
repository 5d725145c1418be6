import { metrics, trace } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PROMETHEUS_CONTENT_TYPE, startTelemetry, type Telemetry } from '../src/index.ts';
import { clearOtelEnv, recordingLogger } from './support.ts';

describe('Prometheus text', () => {
  let telemetry: Telemetry | undefined;

  beforeEach(() => {
    clearOtelEnv(vi.stubEnv);
  });
  afterEach(async () => {
    await telemetry?.shutdown();
    telemetry = undefined;
    vi.unstubAllEnvs();
  });

  it('keeps metrics for a scrape when asked, without tracing, exporting or listening anywhere', async () => {
    const logger = recordingLogger();
    telemetry = await startTelemetry({ prometheus: true, serviceName: 'warren-worker', logger });
    expect(telemetry).toMatchObject({ tracing: false, metering: true });
    expect(telemetry.prometheus?.contentType).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(trace.getTracer('prometheus-test').startSpan('unseen').isRecording()).toBe(false);

    const counter = metrics.getMeter('prometheus-test').createCounter('warren.test.jobs', {
      description: 'Jobs seen by the test',
    });
    counter.add(2, { handler: 'echo' });
    const histogram = metrics.getMeter('prometheus-test').createHistogram('warren.test.duration', {
      unit: 's',
    });
    histogram.record(0.02);

    const text = await telemetry.prometheus!.collect();
    expect(text).toContain('# HELP warren_test_jobs_total Jobs seen by the test');
    expect(text).toContain('# TYPE warren_test_jobs_total counter');
    expect(text).toMatch(/^warren_test_jobs_total\{handler="echo",[^}]*\} 2$/m);
    expect(text).toMatch(/^warren_test_duration_count\{[^}]*\} 1$/m);
    expect(text).toMatch(/^target_info\{[^}]*service_name="warren-worker"/m);

    counter.add(1, { handler: 'echo' });
    expect(await telemetry.prometheus!.collect()).toMatch(
      /^warren_test_jobs_total\{handler="echo",[^}]*\} 3$/m,
    );
    expect(logger.lines.map((line) => [line.msg, line.fields])).toEqual([
      ['telemetry started', { traces: [], metrics: ['prometheus'] }],
    ]);
  });

  it('is also turned on by OTEL_METRICS_EXPORTER=prometheus', async () => {
    vi.stubEnv('OTEL_METRICS_EXPORTER', 'prometheus');
    telemetry = await startTelemetry();
    expect(telemetry.prometheus).toBeDefined();
  });

  it('is off without the option or the variable', async () => {
    telemetry = await startTelemetry();
    expect(telemetry.prometheus).toBeUndefined();
  });
});
