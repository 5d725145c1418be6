import {
  Consumer,
  type ConsumerCounts,
  type ConsumerExit,
  DEFAULT_RETRY_POLICY,
  describeThrown,
  IllegalStateError,
  JobPublisher,
  MemoryDedupeStore,
  type QueueTopology,
  type TransitionEvent,
  topologyFor,
} from '@warren/core';
import { MemoryBroker, MemoryTransport } from '@warren/memory';
import { pino } from 'pino';
import { FakeClock } from './fake-clock.ts';
import { JobAnsweredError, JobDeadLetteredError, JobStillWaitingError } from './harness-errors.ts';
import {
  type HarnessJob,
  type HarnessOptions,
  handlerOptionsOf,
  NO_INFERENCE,
} from './harness-options.ts';
import {
  type HarnessDeadLetter,
  type HarnessResult,
  type JobOutcome,
  Outcomes,
} from './harness-outcomes.ts';
import { JobWatch } from './job-watch.ts';
import { realDelay, settle } from './settle.ts';
import { WatchedTransport } from './watched-transport.ts';

/** As a worker's config has them: a claim outlives any test, a result is remembered a day. */
const DEDUPE = { leaseMs: 300_000, ttlMs: 86_400_000 };

/** How often the grace for a running handler looks again, in real milliseconds. */
const GRACE_STEP_MS = 5;

/** A guard against timers that set themselves again at no delay, for ever. */
const MAX_TIMER_STEPS = 100_000;

/** What a {@link Harness} is made of. */
interface HarnessParts {
  clock: FakeClock;
  broker: MemoryBroker;
  topology: QueueTopology;
  consumer: Consumer;
  transports: MemoryTransport[];
  dedupeStore: MemoryDedupeStore;
  publisher: JobPublisher;
  replyQueue: string;
  outcomes: Outcomes;
  jobs: JobWatch;
  transitions: TransitionEvent[];
  modelType: string;
  handlerGraceMs: number;
}

/**
 * A handler running in a real consumer on the embedded broker, with time on a fake clock: what
 * {@link createHarness} returns. Nothing runs between calls; `advance`, `result` and
 * `deadLetter` let the broker and the consumer run until they are quiet.
 */
export class Harness {
  /** The clock the broker, the consumer and the dedupe store read. Move it with {@link advance}. */
  readonly clock: FakeClock;
  readonly #parts: HarnessParts;
  readonly #published = new Set<string>();
  #exit: ConsumerExit | undefined;
  #stopped = false;

  constructor(parts: HarnessParts) {
    this.clock = parts.clock;
    this.#parts = parts;
    parts.consumer.exited.then((exit) => {
      this.#exit = exit;
    });
  }

  /** What the consumer has done so far, by outcome. */
  get counts(): ConsumerCounts {
    return this.#parts.consumer.counts;
  }

  /** Every state change of the consumer and its jobs, in order. */
  get transitions(): readonly TransitionEvent[] {
    return this.#parts.transitions;
  }

  /** Every result that arrived, in order (a job answered twice shows twice). */
  get results(): readonly HarnessResult[] {
    return this.#parts.outcomes.results;
  }

  /** Every dead letter that arrived, in order. */
  get deadLetters(): readonly HarnessDeadLetter[] {
    return this.#parts.outcomes.deadLetters;
  }

  /**
   * Publishes a job with `input` as its body, as a producer would, asking for the result on the
   * harness's reply queue; resolves with its message id once the broker has it. Input the
   * handler's schema refuses is published all the same: its dead letter is what a test wants.
   */
  async publish(input: unknown, job: HarnessJob = {}): Promise<string> {
    this.#requireRunning('publish');
    if (input === undefined) {
      throw new TypeError('publish: expected a JSON value as input, found undefined');
    }
    const { messageId } = await this.#parts.publisher.publish({
      ...job,
      tenant: job.tenant ?? 'test',
      modelType: this.#parts.modelType,
      input,
      replyTo: this.#parts.replyQueue,
      now: () => this.clock.now(),
    });
    this.#published.add(messageId);
    return messageId;
  }

  /**
   * Resolves with the job's result (its JSON parsed). Rejects with a
   * {@link JobDeadLetteredError} if it was dead-lettered instead, and with a
   * {@link JobStillWaitingError} if it has neither once everything is quiet.
   */
  async result(messageId: string): Promise<unknown> {
    const outcome = await this.#outcomeOf(messageId, 'result');
    if (outcome.kind === 'dead-letter') throw new JobDeadLetteredError(outcome.deadLetter);
    return outcome.result.body;
  }

  /**
   * Resolves with the job's dead letter. Rejects with a {@link JobAnsweredError} if a result
   * came instead, and with a {@link JobStillWaitingError} if it has neither once all is quiet.
   */
  async deadLetter(messageId: string): Promise<HarnessDeadLetter> {
    const outcome = await this.#outcomeOf(messageId, 'deadLetter');
    if (outcome.kind === 'result') throw new JobAnsweredError(outcome.result);
    return outcome.deadLetter;
  }

  /**
   * Moves the clock `ms` forward, one timer at a time: at each, the broker and the consumer run
   * until quiet before the next, so a retry published on the way waits its full delay.
   * `advance(0)` only lets them run.
   */
  async advance(ms: number): Promise<void> {
    this.#requireRunning('advance');
    if (!(ms >= 0 && Number.isFinite(ms))) {
      throw new RangeError(`advance: expected 0 or more milliseconds, found ${ms}`);
    }
    const until = this.clock.now() + ms;
    await this.#settle();
    for (let step = 0; step < MAX_TIMER_STEPS; step += 1) {
      const next = this.clock.msUntilNextTimer();
      if (next === undefined || this.clock.now() + next > until) {
        this.clock.advance(until - this.clock.now());
        return this.#settle();
      }
      this.clock.advance(next);
      await this.#settle();
    }
    throw new Error(`advance: more than ${MAX_TIMER_STEPS} timers fell due; is one re-arming?`);
  }

  /**
   * Stops the consumer and closes the broker connections. A handler still running is aborted at
   * once (its job is requeued), rather than holding the test. Safe to call more than once.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const { consumer, transports, dedupeStore } = this.#parts;
    await consumer.stop();
    for (const transport of transports) await transport.close();
    await dedupeStore.close();
  }

  async #outcomeOf(messageId: string, call: string): Promise<JobOutcome> {
    this.#requireRunning(call);
    if (!this.#published.has(messageId)) {
      throw new Error(`${call}: no job with message id ${messageId} was published here`);
    }
    await this.#settle();
    await this.#graceForHandler(messageId);

    const outcome = this.#parts.outcomes.of(messageId);
    if (outcome !== undefined) return outcome;
    throw new JobStillWaitingError(
      messageId,
      this.#whyWaiting(messageId),
      this.clock.msUntilNextTimer(),
    );
  }

  /**
   * Gives a handler that awaits real I/O a little real time to return: the job's own, or the one
   * its batch waits for before it starts.
   */
  async #graceForHandler(messageId: string): Promise<void> {
    const { outcomes, jobs, handlerGraceMs } = this.#parts;
    for (let waited = 0; waited < handlerGraceMs; waited += GRACE_STEP_MS) {
      if (outcomes.of(messageId) !== undefined) return;
      if (jobs.stateOf(messageId) !== 'handling' && !jobs.mayWaitForHandler(messageId)) return;
      await realDelay(GRACE_STEP_MS);
      await this.#settle();
    }
  }

  #whyWaiting(messageId: string): string {
    const why = this.#parts.jobs.describe(messageId);
    if (this.#exit?.state !== 'failed') return why;
    return `${why}; the consumer has failed: ${describeThrown(this.#exit.error)}`;
  }

  #settle(): Promise<void> {
    return settle(() => this.#snapshot());
  }

  /** Everything whose change means the broker or the consumer is still at work. */
  #snapshot(): string {
    const { broker, topology, replyQueue, consumer, outcomes, transitions, clock } = this.#parts;
    const queues = [
      topology.queue,
      topology.deadLetterQueue,
      replyQueue,
      ...topology.delayQueues.map((queue) => queue.name),
    ];
    const depths = queues.map((queue) =>
      broker.hasQueue(queue) ? broker.messageCount(queue) : -1,
    );
    const counts = Object.values(consumer.counts);
    return [transitions.length, outcomes.size, clock.pendingTimers, ...counts, ...depths].join();
  }

  #requireRunning(call: string): void {
    if (this.#stopped) throw new IllegalStateError(`harness: ${call}() after stop()`);
  }
}

/**
 * Runs `options.handler` the way a worker would (its `setup`, then a consumer with retries,
 * deadlines and dedupe) on an embedded broker whose time is a {@link FakeClock}. No RabbitMQ and
 * no real waiting: a test publishes jobs, advances the clock, and reads results and dead letters.
 *
 * ```ts
 * const harness = await createHarness({ handler, retry: { maxAttempts: 3 } });
 * const id = await harness.publish({ text: 'hello' });
 * await harness.advance(10_000);
 * expect(await harness.result(id)).toEqual({ length: 5 });
 * await harness.stop();
 * ```
 */
export async function createHarness(options: HarnessOptions): Promise<Harness> {
  const { handler } = options;
  const clock = new FakeClock(options.now);
  const logger = options.logger ?? pino({ level: 'silent' });
  const inference = options.inference ?? NO_INFERENCE;
  const handlerOptions = handlerOptionsOf(handler, options.options);
  const handlerLogger = logger.child({ handler: handler.name });
  await handler.setup?.({ logger: handlerLogger, inference, options: handlerOptions });

  const retry = { ...DEFAULT_RETRY_POLICY, ...handler.retry, ...options.retry };
  const topology = topologyFor(handler.modelType, { retry });
  const jobs = new JobWatch(topology.delayQueues.map((queue) => queue.name));
  const broker = new MemoryBroker({ clock });
  const worker = new MemoryTransport(broker, { connectionName: 'harness-worker' });
  const client = new MemoryTransport(broker, { connectionName: 'harness-client' });
  const dedupeStore = new MemoryDedupeStore({ clock });
  const transitions: TransitionEvent[] = [];
  const consumer = new Consumer({
    handler,
    handlerOptions,
    transport: new WatchedTransport(worker, (target, properties) =>
      jobs.published(target, properties),
    ),
    inference,
    logger,
    prefetch: options.prefetch,
    concurrency: options.concurrency,
    // stop() comes after the test: whatever still runs then is stuck, and is aborted at once.
    drainTimeoutMs: 0,
    retry: options.retry,
    deadlines: options.deadlines,
    dedupe: { store: dedupeStore, ...DEDUPE },
    clock,
    random: options.random ?? (() => 0.5),
  });
  consumer.onTransition((event) => {
    transitions.push(event);
    jobs.transitioned(event);
  });

  try {
    await consumer.start();
    await client.connect();
    const replyQueue = await client.declareReplyQueue();
    const outcomes = await Outcomes.collect(client, replyQueue, topology.deadLetterQueue);
    return new Harness({
      clock,
      broker,
      topology,
      consumer,
      transports: [client, worker],
      dedupeStore,
      publisher: new JobPublisher(client),
      replyQueue,
      outcomes,
      jobs,
      transitions,
      modelType: handler.modelType,
      handlerGraceMs: options.handlerGraceMs ?? 200,
    });
  } catch (error) {
    await consumer.stop();
    await client.close();
    await worker.close();
    throw error;
  }
}
