import { trace } from '@opentelemetry/api';
import { startTelemetry, type Telemetry } from '@warren/telemetry';
import { FakeClock } from '@warren/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OtlpReceiver } from '../../../packages/telemetry/test/otlp-receiver.ts';
import { clearOtelEnv } from '../../../packages/telemetry/test/support.ts';
import { createWorkerLogger, type WorkerLoggerOptions } from '../src/logging.ts';

type Line = Record<string, unknown>;

/** The worker's logger, writing parsed lines into `lines`. */
function capture(options: WorkerLoggerOptions = {}) {
  const lines: Line[] = [];
  const made = createWorkerLogger({
    ...options,
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  return { ...made, lines };
}

function withoutNoise(lines: Line[]): Line[] {
  return lines.map(({ time: _t, pid: _p, hostname: _h, ...rest }) => rest);
}

describe('repeated warnings', () => {
  it('writes a warning once, counts its repeats for the window, then writes one summary line with the count', () => {
    const clock = new FakeClock();
    const { logger, lines } = capture({ clock, repeatWindowMs: 10_000 });
    const consumer = logger.child({ handler: 'echo' });

    for (let attempt = 1; attempt <= 5; attempt += 1) {
      consumer.warn(
        { messageId: `m${attempt}`, code: 'WARREN_HANDLER_FAILED', attempt },
        'job will be retried',
      );
    }
    expect(withoutNoise(lines)).toEqual([
      {
        level: 40,
        service: 'warren-worker',
        handler: 'echo',
        messageId: 'm1',
        code: 'WARREN_HANDLER_FAILED',
        attempt: 1,
        msg: 'job will be retried',
      },
    ]);

    clock.advance(10_000);
    expect(withoutNoise(lines).slice(1)).toEqual([
      {
        level: 40,
        service: 'warren-worker',
        handler: 'echo',
        code: 'WARREN_HANDLER_FAILED',
        repeated: 4,
        windowMs: 10_000,
        msg: 'job will be retried',
      },
    ]);

    // A new window: the next one is written in full again.
    consumer.warn({ messageId: 'm6', code: 'WARREN_HANDLER_FAILED' }, 'job will be retried');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ messageId: 'm6' });
  });

  it('keeps apart warnings whose message, code, handler or level differ, and never holds back info or fatal', () => {
    const clock = new FakeClock();
    const { logger, lines } = capture({ clock });
    const echo = logger.child({ handler: 'echo' });
    const embed = logger.child({ handler: 'embed' });

    echo.warn({ code: 'WARREN_HANDLER_FAILED' }, 'job will be retried');
    echo.warn({ code: 'WARREN_INFERENCE_FAILED' }, 'job will be retried');
    embed.warn({ code: 'WARREN_HANDLER_FAILED' }, 'job will be retried');
    echo.warn({ code: 'WARREN_HANDLER_FAILED' }, 'job dead-lettered');
    echo.error({ code: 'WARREN_HANDLER_FAILED' }, 'job will be retried');
    echo.warn('broker connection lost');
    for (let index = 0; index < 3; index += 1) echo.info({ index }, 'consumer started');
    for (let index = 0; index < 2; index += 1) logger.fatal({ index }, 'worker failed to start');

    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [40, 'job will be retried'],
      [40, 'job will be retried'],
      [40, 'job will be retried'],
      [40, 'job dead-lettered'],
      [50, 'job will be retried'],
      [40, 'broker connection lost'],
      [30, 'consumer started'],
      [30, 'consumer started'],
      [30, 'consumer started'],
      [60, 'worker failed to start'],
      [60, 'worker failed to start'],
    ]);
    // Nothing repeated, so no summary follows.
    clock.advance(60_000);
    expect(lines).toHaveLength(11);
  });

  it('writes pending summaries on flush, as the worker does before it exits', () => {
    const { logger, lines, repeats } = capture({ clock: new FakeClock() });
    for (let index = 0; index < 3; index += 1) {
      logger.error({ err: new Error('ECONNREFUSED'), code: 'WARREN_PUBLISH_FAILED' }, 'oops');
    }
    repeats.flush();
    expect(lines.map((line) => line.repeated)).toEqual([undefined, 2]);
    repeats.flush();
    expect(lines).toHaveLength(2);
  });

  it('collapses nothing with a window of 0', () => {
    const { logger, lines } = capture({ repeatWindowMs: 0 });
    for (let index = 0; index < 3; index += 1) logger.warn({ code: 'X' }, 'same');
    expect(lines).toHaveLength(3);
  });
});

describe('secrets', () => {
  it('redacts authorization headers and the request body a library error carries', () => {
    const { logger, lines } = capture();
    const error = Object.assign(new Error('HTTP 500'), {
      httpRequest: {
        url: 'https://router.huggingface.co/models/x',
        body: '{"inputs":"the job text"}',
        headers: { Authorization: 'Bearer hf_secret' },
      },
    });
    logger.error({ err: error, headers: { authorization: 'Basic abc' } }, 'remote call failed');
    const text = JSON.stringify(lines);
    expect(text).not.toContain('hf_secret');
    expect(text).not.toContain('the job text');
    expect(text).not.toContain('Basic abc');
    expect(lines[0]).toMatchObject({
      err: { httpRequest: { url: 'https://router.huggingface.co/models/x', body: '[redacted]' } },
    });
  });
});

describe('trace ids in log lines', () => {
  let telemetry: Telemetry | undefined;
  let receiver: OtlpReceiver | undefined;

  beforeEach(() => {
    clearOtelEnv(vi.stubEnv);
  });
  afterEach(async () => {
    await telemetry?.shutdown();
    await receiver?.close();
    vi.unstubAllEnvs();
  });

  it('puts trace_id, span_id and trace_flags of the active span on every line written inside it, children included', async () => {
    receiver = await OtlpReceiver.start();
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    telemetry = await startTelemetry();
    const { logger, lines, repeats } = capture({ clock: new FakeClock() });
    const handlerLogger = logger.child({ handler: 'echo' });

    logger.info('before the job');
    const ids = await trace.getTracer('logging-test').startActiveSpan('job', async (span) => {
      handlerLogger.info({ messageId: 'm1' }, 'job started');
      await new Promise((resolve) => setTimeout(resolve, 5));
      handlerLogger.warn({ messageId: 'm1', code: 'WARREN_HANDLER_FAILED' }, 'job will be retried');
      handlerLogger.warn({ messageId: 'm2', code: 'WARREN_HANDLER_FAILED' }, 'job will be retried');
      // The summary speaks for jobs of many traces: it carries none.
      repeats.flush();
      span.end();
      return span.spanContext();
    });
    logger.info('after the job');

    const traced = { trace_id: ids.traceId, span_id: ids.spanId, trace_flags: '01' };
    expect(lines[0]).not.toHaveProperty('trace_id');
    expect(lines[1]).toMatchObject({ ...traced, msg: 'job started', handler: 'echo' });
    expect(lines[2]).toMatchObject({ ...traced, msg: 'job will be retried' });
    expect(lines[3]).toMatchObject({ msg: 'job will be retried', repeated: 1 });
    expect(lines[3]).not.toHaveProperty('trace_id');
    expect(lines[4]).toMatchObject({ msg: 'after the job' });
    expect(lines[4]).not.toHaveProperty('trace_id');
  });

  it('writes no trace fields when tracing is off', () => {
    const { logger, lines } = capture();
    trace.getTracer('logging-test').startActiveSpan('job', (span) => {
      logger.info('inside');
      span.end();
    });
    expect(lines[0]).not.toHaveProperty('trace_id');
  });
});
