import { setTimeout as realSleep } from 'node:timers/promises';
import {
  defineHandler,
  HEADERS,
  type InferenceClient,
  JobUnroutableError,
  ModelLoadError,
} from '@warren/core';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import {
  createHarness,
  type Harness,
  type HarnessOptions,
  JobAnsweredError,
  JobDeadLetteredError,
  JobStillWaitingError,
} from '../src/index.ts';

const input = z.object({ text: z.string() });

/** The attempts each handler call saw, in order. */
type Calls = number[];

/** Fails attempts up to `failUntil`, then answers with the attempt it is on. */
function flakyHandler(failUntil: number, calls: Calls = []) {
  return defineHandler({
    name: 'flaky',
    modelType: 'lab',
    input,
    async handle(_, { job }) {
      calls.push(job.attempt);
      if (job.attempt <= failUntil) throw new Error(`flaky on attempt ${job.attempt}`);
      return { attempt: job.attempt };
    },
  });
}

/** Waits on its signal, and nothing else: only a deadline or a stop ends it. */
const patientHandler = defineHandler({
  name: 'patient',
  modelType: 'lab',
  input,
  handle: (_, { signal }) =>
    new Promise<never>((_resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    }),
});

/** Embeds its text with the model named in its options. */
const embedHandler = defineHandler({
  name: 'embed',
  modelType: 'feature-extraction',
  input,
  options: z.object({ model: z.string().default('tiny-embedder') }),
  async handle({ text }, { inference, options, signal }) {
    const [vector] = await inference.featureExtraction({
      model: options.model,
      inputs: [text],
      signal,
    });
    return { model: options.model, vector };
  },
});

describe('the plugin test harness', () => {
  const harnesses: Harness[] = [];
  afterEach(async () => {
    for (const harness of harnesses.splice(0)) await harness.stop();
  });

  async function start(options: HarnessOptions): Promise<Harness> {
    const harness = await createHarness(options);
    harnesses.push(harness);
    return harness;
  }

  it('retries a handler that fails twice after growing delays, then answers once, on attempt 3', async () => {
    const calls: Calls = [];
    const harness = await start({ handler: flakyHandler(2, calls) });

    const id = await harness.publish({ text: 'hello' });
    await expect(harness.result(id)).rejects.toThrow(
      'attempt 1 failed with WARREN_HANDLER_FAILED (flaky on attempt 1), and attempt 2 waits in ' +
        'a delay queue; advance the clock by at least 1000 ms',
    );
    await harness.advance(999);
    await expect(harness.result(id)).rejects.toThrow('advance the clock by at least 1 ms');
    await harness.advance(1);
    await expect(harness.result(id)).rejects.toThrow('advance the clock by at least 2000 ms');
    await harness.advance(1_999);
    expect(harness.results).toHaveLength(0);
    await harness.advance(1);

    expect(await harness.result(id)).toEqual({ attempt: 3 });
    await harness.advance(60_000);
    expect(harness.results).toHaveLength(1);
    expect(harness.results[0]?.headers[HEADERS.attempt]).toBe(3);
    expect(calls).toEqual([1, 2, 3]);
    expect(harness.counts).toMatchObject({ received: 3, retried: 2, succeeded: 1 });
  });

  it('dead-letters a handler that always fails as handler-failed once maxAttempts are spent', async () => {
    const calls: Calls = [];
    const harness = await start({
      handler: flakyHandler(Infinity, calls),
      retry: { maxAttempts: 3 },
    });

    const id = await harness.publish({ text: 'hello' });
    await harness.advance(60_000);

    expect(await harness.deadLetter(id)).toMatchObject({
      messageId: id,
      reason: 'handler-failed',
      code: 'WARREN_HANDLER_FAILED',
      message: 'flaky on attempt 3',
      attempts: 3,
      body: { text: 'hello' },
    });
    expect(calls).toEqual([1, 2, 3]);
    expect(harness.counts).toMatchObject({ retried: 2, deadLettered: 1, succeeded: 0 });
  });

  it('dead-letters input that breaks the schema at once, without calling the handler', async () => {
    const calls: Calls = [];
    const harness = await start({ handler: flakyHandler(0, calls) });

    const id = await harness.publish({ text: 42 });

    expect(await harness.deadLetter(id)).toMatchObject({
      reason: 'schema-violation',
      code: 'WARREN_SCHEMA_VIOLATION',
      message: 'input.text: expected string, found a number',
      attempts: 1,
      body: { text: 42 },
    });
    expect(calls).toEqual([]);
    expect(harness.clock.now()).toBe(Date.UTC(2025, 0, 1));
  });

  it('dead-letters a job as expired when the clock passes its deadline while the handler waits on its signal', async () => {
    const harness = await start({ handler: patientHandler, now: Date.UTC(2030, 5, 1) });

    const id = await harness.publish({ text: 'hello' }, { deadline: harness.clock.now() + 5_000 });
    await harness.advance(4_999);
    expect(harness.deadLetters).toHaveLength(0);
    await harness.advance(1);

    expect(await harness.deadLetter(id)).toMatchObject({
      reason: 'expired',
      code: 'WARREN_DEADLINE_EXCEEDED',
      message: 'deadline passed while the handler ran',
      attempts: 1,
    });
    expect(harness.deadLetters[0]?.headers[HEADERS.failedAt]).toBe(Date.UTC(2030, 5, 1) + 5_000);
    expect(harness.counts).toMatchObject({ expired: 1, deadLettered: 1 });
  });

  it('reports every state of a job, from decoding through done', async () => {
    const harness = await start({ handler: flakyHandler(0) });

    const id = await harness.publish({ text: 'hello' });
    await harness.result(id);

    const states = harness.transitions
      .filter((event) => event.actor === 'job' && event.messageIds?.includes(id))
      .map((event) => event.to);
    expect(states).toEqual([
      'decoding',
      'verifying',
      'validating',
      'handling',
      'publishing',
      'settling',
      'done',
    ]);
  });

  it("rejects result() for a dead-lettered job with the dead letter's reason and code", async () => {
    const harness = await start({ handler: flakyHandler(Infinity), retry: { maxAttempts: 1 } });

    const id = await harness.publish({ text: 'hello' });
    const failure = harness.result(id);

    await expect(failure).rejects.toThrow(JobDeadLetteredError);
    await expect(failure).rejects.toThrow(
      `job ${id} was dead-lettered instead of answered: handler-failed (WARREN_HANDLER_FAILED) ` +
        'after 1 attempt: flaky on attempt 1',
    );
  });

  it('rejects deadLetter() for a job that was answered, quoting the result', async () => {
    const harness = await start({ handler: flakyHandler(0) });

    const id = await harness.publish({ text: 'hello' });

    await expect(harness.deadLetter(id)).rejects.toThrow(
      new JobAnsweredError({ messageId: id, body: { attempt: 1 }, headers: {} }).message,
    );
  });

  it('rejects result() for a job stuck on the clock, saying how far to advance it', async () => {
    const harness = await start({ handler: patientHandler });

    const id = await harness.publish({ text: 'hello' }, { deadline: harness.clock.now() + 30_000 });
    const waiting = harness.result(id);

    await expect(waiting).rejects.toThrow(JobStillWaitingError);
    await expect(waiting).rejects.toThrow(
      `job ${id} is still waiting: its handler has not returned (or waits for a free slot under ` +
        '`concurrency`); advance the clock by at least 30000 ms (harness.advance) to reach the ' +
        'next timer',
    );
  });

  it('rejects result() when nothing on the clock could ever move the job, and still stops', async () => {
    const harness = await start({ handler: patientHandler, handlerGraceMs: 0 });

    const id = await harness.publish({ text: 'hello' });

    await expect(harness.result(id)).rejects.toThrow(
      `job ${id} is still waiting, and nothing is pending on the clock: its handler has not returned`,
    );
    await harness.stop();
    expect(harness.counts).toMatchObject({ received: 1, requeued: 1 });
  });

  it('gives a handler that awaits real I/O a little real time to return', async () => {
    const slow = defineHandler({
      name: 'slow',
      modelType: 'lab',
      input,
      async handle({ text }) {
        await realSleep(20);
        return { text };
      },
    });
    const harness = await start({ handler: slow });

    const id = await harness.publish({ text: 'hello' });

    expect(await harness.result(id)).toEqual({ text: 'hello' });
  });

  it('waits for the handler call a batch waits on before it can start', async () => {
    const sizes: number[] = [];
    const batching = defineHandler({
      name: 'batching',
      modelType: 'lab',
      input,
      batch: { maxSize: 8, maxWaitMs: 5 },
      async handleBatch(inputs) {
        sizes.push(inputs.length);
        await realSleep(100);
        return inputs.map(({ text }) => ({ text }));
      },
    });
    const harness = await start({ handler: batching });

    const first = await harness.publish({ text: 'a' });
    await harness.advance(5);
    // The handler holds the first batch for 100 ms of real time; this one waits for it.
    const second = await harness.publish({ text: 'b' });
    await harness.advance(5);

    expect(await harness.result(second)).toEqual({ text: 'b' });
    expect(await harness.result(first)).toEqual({ text: 'a' });
    expect(sizes).toEqual([1, 1]);
  });

  it('waits for the handler call a retried job waits on before its next attempt starts', async () => {
    const seen: string[] = [];
    const batching = defineHandler({
      name: 'batching',
      modelType: 'lab',
      input,
      batch: { maxSize: 8, maxWaitMs: 5 },
      retry: { initialDelayMs: 50, jitter: 0 },
      async handleBatch(inputs, { jobs }) {
        seen.push(...inputs.map(({ text }, i) => `${text}@${jobs[i]!.attempt}`));
        if (inputs.some(({ text }) => text === 'a')) await realSleep(100);
        return inputs.map(({ text }, i) =>
          text === 'b' && jobs[i]!.attempt === 1 ? new Error('b fails once') : { text },
        );
      },
    });
    const harness = await start({ handler: batching });

    const b = await harness.publish({ text: 'b' });
    await harness.advance(5);
    const a = await harness.publish({ text: 'a' });
    await harness.advance(5);
    // b's second attempt comes back while a's handler holds the only slot for 100 ms.
    await harness.advance(50);

    expect(await harness.result(b)).toEqual({ text: 'b' });
    expect(await harness.result(a)).toEqual({ text: 'a' });
    expect(seen).toEqual(['b@1', 'a@1', 'b@2']);
  });

  it('runs the handler with the given inference client and its options, defaults applied', async () => {
    const requests: unknown[] = [];
    const inference: InferenceClient = {
      featureExtraction: async (request) => {
        requests.push({ model: request.model, inputs: request.inputs });
        return [[0.6, 0.8]];
      },
      textClassification: async () => [],
    };
    const harness = await start({ handler: embedHandler, inference, options: {} });

    const id = await harness.publish({ text: 'hello' });

    expect(await harness.result(id)).toEqual({ model: 'tiny-embedder', vector: [0.6, 0.8] });
    expect(requests).toEqual([{ model: 'tiny-embedder', inputs: ['hello'] }]);
  });

  it('dead-letters at once a job whose handler calls inference when the harness has none', async () => {
    const harness = await start({ handler: embedHandler });

    const id = await harness.publish({ text: 'hello' });

    await expect(harness.result(id)).rejects.toThrow(
      'this harness has no inference client; pass `inference` to createHarness',
    );
  });

  it("refuses handler options that break the handler's schema, naming the field", async () => {
    await expect(createHarness({ handler: embedHandler, options: { model: 7 } })).rejects.toThrow(
      'options.model: expected string, found 7',
    );
  });

  it('answers a job published twice under one message id once', async () => {
    const calls: Calls = [];
    const harness = await start({ handler: flakyHandler(0, calls) });

    await harness.publish({ text: 'hello' }, { messageId: 'job-1' });
    await harness.publish({ text: 'hello' }, { messageId: 'job-1' });
    await harness.advance(10_000);

    expect(await harness.result('job-1')).toEqual({ attempt: 1 });
    expect(harness.results).toHaveLength(1);
    expect(calls).toEqual([1]);
    expect(harness.counts.duplicates).toBe(1);
  });

  it('counts a finished job and stops although the test installed fake timers first', async () => {
    vi.useFakeTimers();
    try {
      const harness = await start({ handler: flakyHandler(0) });
      const messageId = await harness.publish({ text: 'hello' });

      expect(await harness.result(messageId)).toEqual({ attempt: 1 });
      await harness.advance(0);
      expect(harness.counts).toMatchObject({ received: 1, succeeded: 1 });
      await harness.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('takes a handler that returns a plain value, or throws before returning, as an async one', async () => {
    const plain = defineHandler({
      name: 'plain',
      modelType: 'lab',
      input,
      // Plugins are JavaScript: nothing stops one from answering without a promise.
      handle: (({ text }: { text: string }) => ({ text })) as never,
    });
    const harness = await start({ handler: plain });
    expect(await harness.result(await harness.publish({ text: 'plain' }))).toEqual({
      text: 'plain',
    });

    const throwing = defineHandler({
      name: 'throwing',
      modelType: 'lab',
      input,
      handle: (() => {
        throw new Error('thrown at once');
      }) as never,
      retry: { maxAttempts: 1 },
    });
    const second = await start({ handler: throwing });
    await expect(second.result(await second.publish({ text: 'x' }))).rejects.toThrow(
      'thrown at once',
    );
  });

  it('stops taking jobs after a handler throws a worker fault synchronously', async () => {
    let calls = 0;
    const crashing = defineHandler({
      name: 'crashing',
      modelType: 'lab',
      input,
      handle: (() => {
        calls += 1;
        // The first call is slow, so that the other jobs wait for its slot.
        if (calls === 1) return realSleep(50).then(() => ({ ok: true }));
        throw new ModelLoadError('the model folder went away');
      }) as never,
    });
    const harness = await start({ handler: crashing, prefetch: 5 });
    const first = await harness.publish({ text: 'a' });
    for (const text of ['b', 'c', 'd']) await harness.publish({ text });

    expect(await harness.result(first)).toEqual({ ok: true });
    await harness.advance(0);
    // The second call's fault stops the consumer before any other job starts in its slot.
    expect(calls).toBe(2);
    expect(harness.counts.requeued).toBeGreaterThanOrEqual(1);
  });

  it('refuses at publish a job of a scope its consumer does not serve', async () => {
    const harness = await start({ handler: flakyHandler(0) });

    await expect(harness.publish({ text: 'hello' }, { scope: 'internal' })).rejects.toBeInstanceOf(
      JobUnroutableError,
    );
    expect(await harness.result(await harness.publish({ text: 'hello' }))).toEqual({ attempt: 1 });
  });

  it('gives a handler its job, options, and a logger bound to the job, made once per call', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const seen: Array<{ sameLogger: boolean; messageId: string; options: unknown }> = [];
    const handler = defineHandler({
      name: 'chatty',
      modelType: 'lab',
      input,
      options: z.object({ greeting: z.string().default('hi') }),
      async handle({ text }, context) {
        // Mocks and instrumentation wrap the context: every way in reaches the same logger,
        // the first read through a prototype copy included.
        const first = Object.create(context).logger;
        const { logger } = context;
        logger.info({ text: text.length }, 'handling');
        expect(logger).toBe(first);
        expect(new Proxy(context, { set: () => false }).logger).toBe(first);
        expect(Object.freeze(Object.create(context)).signal).toBe(context.signal);
        seen.push({
          sameLogger: context.logger === logger,
          messageId: context.job.messageId,
          options: context.options,
        });
        return { aborted: context.signal.aborted };
      },
    });
    const harness = await start({ handler, logger });

    const ids = [await harness.publish({ text: 'one' }), await harness.publish({ text: 'three' })];
    for (const id of ids) expect(await harness.result(id)).toEqual({ aborted: false });

    expect(seen).toEqual(
      ids.map((messageId) => ({ sameLogger: true, messageId, options: { greeting: 'hi' } })),
    );
    const handling = lines.filter((line) => line.msg === 'handling');
    expect(
      handling.map(({ messageId, attempt, handler: name, text }) => ({
        messageId,
        attempt,
        name,
        text,
      })),
    ).toEqual([
      { messageId: ids[0], attempt: 1, name: 'chatty', text: 3 },
      { messageId: ids[1], attempt: 1, name: 'chatty', text: 5 },
    ]);
  });

  it('refuses to wait for a job it never published, and any call after stop()', async () => {
    const harness = await start({ handler: flakyHandler(0) });

    await expect(harness.result('nobody')).rejects.toThrow(
      'result: no job with message id nobody was published here',
    );
    await harness.stop();
    await expect(harness.publish({ text: 'hello' })).rejects.toThrow(
      'harness: publish() after stop()',
    );
  });
});
