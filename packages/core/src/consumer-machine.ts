import type PQueue from 'p-queue';
import { type ActorRefFrom, assign, enqueueActions, setup } from 'xstate';
import { addToBatch, EMPTY_BATCH, type PendingBatch } from './batcher.ts';
import type { Timer } from './clock.ts';
import { inOneEvent, subscribe, unsubscribe } from './consumer-subscription.ts';
import type { BatchOptions } from './handler.ts';
import { abandonedOutput, type JobObserver, type JobOutput, runJob } from './job-run.ts';
import { giveBack } from './job-settle.ts';
import type { JobDeps, JobOutcome } from './job-steps.ts';
import type { PrefetchController } from './prefetch-controller.ts';
import type { Delivery, Subscription } from './transport.ts';

/** Counts of what a consumer has done, by outcome. */
export interface ConsumerCounts {
  received: number;
  succeeded: number;
  /** Failed attempts sent to a delay queue to be tried again. */
  retried: number;
  /** Jobs another worker held at the time, sent to wait in a delay queue. */
  deferred: number;
  deadLettered: number;
  /** Jobs found past their deadline (dead-lettered or dropped, per policy). */
  expired: number;
  /** Expired jobs dropped without a dead letter. */
  dropped: number;
  /** Jobs whose result was already published, acked without running. */
  duplicates: number;
  /** Jobs returned to the queue (shutdown, or a failed publish). */
  requeued: number;
}

const NO_COUNTS: ConsumerCounts = {
  received: 0,
  succeeded: 0,
  retried: 0,
  deferred: 0,
  deadLettered: 0,
  expired: 0,
  dropped: 0,
  duplicates: 0,
  requeued: 0,
};

const COUNTED = {
  succeeded: 'succeeded',
  retried: 'retried',
  deferred: 'deferred',
  'dead-lettered': 'deadLettered',
  dropped: 'dropped',
  duplicate: 'duplicates',
  requeued: 'requeued',
} as const satisfies Record<JobOutcome, keyof ConsumerCounts>;

export interface ConsumerMachineInput {
  jobDeps: JobDeps;
  /** The prefetch to use once probation ends; the controller, when there is one, moves it. */
  prefetch: number;
  controller?: PrefetchController;
  batch: BatchOptions;
  /** How long draining waits for started jobs before aborting them (they are requeued). */
  drainTimeoutMs: number;
  shutdown: AbortController;
  draining: AbortController;
  limiter: PQueue;
  /** Told of every job's state changes (the consumer's listeners, when there are any). */
  observeJob?: JobObserver;
}

export type ConsumerEvent =
  | { type: 'warren.consumer.start' }
  | { type: 'warren.consumer.stop' }
  /** The deliveries the transport handed over in one go (one socket read, say). */
  | { type: 'warren.deliveries.received'; deliveries: Delivery[] }
  | { type: 'warren.batch.due' }
  /** A handler call ended, so a slot is free (sent only while a due batch waits for one). */
  | { type: 'warren.handler.free' }
  | { type: 'warren.consumer.cancelled'; reason: string }
  /** Jobs that finished since the last such event. */
  | { type: 'warren.jobs.finished'; outputs: JobOutput[] };

/**
 * What stays the same while the consumer runs. Kept apart from the rest of the context, because
 * every update (each `assign`) copies the context's top level: the fewer fields there, the less
 * each delivery costs.
 */
interface ConsumerEnv extends Omit<ConsumerMachineInput, 'prefetch'> {
  /** Jobs started early because the prefetch window was full (see `collect`). */
  windowFull: Set<string>;
  /** Hands a finished job's output back to the machine (see {@link inOneEvent}). */
  reportJob: (output: JobOutput) => void;
}

interface ConsumerContext {
  env: ConsumerEnv;
  /** The prefetch to use once probation ends; the controller, when there is one, moves it. */
  prefetch: number;
  subscription?: Subscription;
  /**
   * Set while redelivered jobs come first after a restart: prefetch stays at 1, so that a job
   * that crashes the process takes no innocent prefetched job with it toward the delivery limit.
   */
  probation: boolean;
  /** A delivery that is not a redelivery has arrived: probation can end. */
  freshSeen: boolean;
  jobsInFlight: number;
  /** Deliveries in jobs that have started and not yet reported back. */
  deliveriesInFlight: number;
  nextJobId: number;
  /** Deliveries waiting for their batch to fill (see {@link addToBatch}). */
  pending: PendingBatch;
  /**
   * Flushes the pending batch when its wait is over; {@link WAITING_FOR_HANDLER} once it is over
   * while every handler slot is taken.
   */
  batchTimer?: Timer;
  stopRequested: boolean;
  counts: ConsumerCounts;
  error?: unknown;
}

/**
 * Stands for the batch timer of a batch whose wait is over while as many handler calls as the
 * concurrency allows are running or queued: it keeps growing (up to its size, its token budget
 * and the prefetch window) until a call ends, since starting it would only queue it behind them,
 * smaller than it need be.
 */
export const WAITING_FOR_HANDLER: Timer = Object.freeze({ cancel() {} });

/** Whether every handler call the consumer allows is running or queued. */
function handlerBusy(limiter: PQueue): boolean {
  return limiter.pending + limiter.size >= limiter.concurrency;
}

/**
 * `setImmediate` as it was when this module loaded: gathering finished jobs waits for a turn of
 * the event loop, not for time, so fake timers a test installs (`vi.useFakeTimers()`) must not
 * hold the reports back. Time, for the consumer, is its `Clock`.
 */
const REAL_SET_IMMEDIATE = globalThis.setImmediate;

/**
 * Runs a job whose first delivery arrived at `receivedAt`; its output goes back to the consumer
 * with others that finish alongside it.
 */
function startJob(
  jobId: string,
  deliveries: readonly Delivery[],
  receivedAt: number,
  context: ConsumerContext,
): void {
  runJob(jobId, deliveries, receivedAt, context.env.jobDeps, context.env.observeJob).then(
    context.env.reportJob,
    (error) => {
      // Only a throwing observer or clock gets here. The job still gives its deliveries back (a
      // second settle of one is ignored) and reports, or a drain would wait for it in vain.
      for (const delivery of deliveries)
        context.env.jobDeps.transport.nack(delivery, { requeue: true });
      context.env.reportJob(abandonedOutput(jobId, deliveries, error));
    },
  );
}

/** Raises prefetch from 1 to the configured value once fresh jobs arrive after a restart. */
function raisePrefetch(context: ConsumerContext): void {
  if (context.prefetch !== 1) applyPrefetch(context, context.prefetch);
}

function applyPrefetch(context: ConsumerContext, prefetch: number): void {
  const { subscription } = context;
  const { jobDeps, controller } = context.env;
  if (subscription === undefined) return;
  const decision = controller?.decisions.at(-1);
  if (decision?.to === prefetch) jobDeps.logger.info({ ...decision }, 'prefetch adjusted');
  subscription.setPrefetch(prefetch).catch((error: unknown) => {
    jobDeps.logger.warn({ err: error, prefetch }, 'prefetch could not be changed');
  });
}

/**
 * A queue consumer's lifecycle: `idle`, `connecting`, `consuming`, `draining`, then `stopped`
 * (or `failed`). Each delivery, or batch of them, becomes a job (see {@link runJob}) that reports
 * back (gathered into `warren.jobs.finished` events); the consumer counts their outcomes and waits for them
 * when draining.
 */
export const consumerMachine = setup({
  types: {
    context: {} as ConsumerContext,
    input: {} as ConsumerMachineInput,
    events: {} as ConsumerEvent,
  },
  actors: { subscribe, unsubscribe },
  delays: { drainTimeout: ({ context }) => context.env.drainTimeoutMs },
  guards: {
    idle: ({ context }) => context.jobsInFlight === 0 && context.pending.deliveries.length === 0,
    stopRequested: ({ context }) => context.stopRequested,
  },
  actions: {
    collect: enqueueActions(({ context, event, enqueue, self }) => {
      if (event.type !== 'warren.deliveries.received') return;
      const { deliveries } = event;
      if (context.probation && deliveries.some((delivery) => !delivery.redelivered)) {
        // Before the subscription is known (a backlog delivers at once), raise on entering consuming.
        enqueue.assign({ freshSeen: true });
        if (context.subscription) {
          enqueue.assign({ probation: false });
          enqueue(() => raisePrefetch(context));
        }
      }
      let { nextJobId, batchTimer, pending } = context;
      // Started by one action, not one each: xstate's cost per action exceeds a job's start.
      const starts: Array<{ jobId: string; batch: readonly Delivery[]; since: number }> = [];
      const now = context.env.jobDeps.clock.now();
      for (const delivery of deliveries) {
        const added = addToBatch(pending, delivery, context.env.batch, now);
        pending = added.pending;
        for (const { deliveries: batch, since } of added.ready) {
          starts.push({ jobId: `job.${nextJobId}`, batch, since });
          nextJobId += 1;
        }
      }
      // What the loop above started: the old pending batch and the new deliveries, less what waits.
      const startedDeliveries =
        context.pending.deliveries.length + deliveries.length - pending.deliveries.length;
      let deliveriesInFlight = context.deliveriesInFlight + startedDeliveries;
      // Every delivery the window allows is here: waiting cannot fill the batch, only delay it.
      const window = context.probation ? 1 : context.prefetch;
      if (
        pending.deliveries.length > 0 &&
        pending.deliveries.length + deliveriesInFlight >= window
      ) {
        const jobId = `job.${nextJobId}`;
        const batch = [...pending.deliveries];
        context.env.windowFull.add(jobId);
        starts.push({ jobId, batch, since: pending.since });
        deliveriesInFlight += batch.length;
        pending = EMPTY_BATCH;
        nextJobId += 1;
      }
      const started = starts.length;
      if (started > 0) {
        enqueue(() => {
          for (const { jobId, batch, since } of starts) startJob(jobId, batch, since, context);
        });
        batchTimer?.cancel();
        batchTimer = undefined;
      }
      if (pending.deliveries.length > 0 && batchTimer === undefined) {
        batchTimer = context.env.jobDeps.clock.setTimer(
          () => self.send({ type: 'warren.batch.due' }),
          context.env.batch.maxWaitMs,
        );
      }
      enqueue(() => context.env.jobDeps.telemetry?.received(deliveries.length));
      enqueue.assign({
        pending,
        batchTimer,
        nextJobId,
        jobsInFlight: context.jobsInFlight + started,
        deliveriesInFlight,
        counts: { ...context.counts, received: context.counts.received + deliveries.length },
      });
    }),
    /**
     * Starts the pending batch as it is: its wait is over, or the consumer is draining. With
     * `whenFree`, only if a handler call can take it now; else it waits for one (and grows).
     */
    flush: enqueueActions(({ context, enqueue }, params?: { whenFree: boolean }) => {
      context.batchTimer?.cancel();
      if (context.pending.deliveries.length === 0) {
        enqueue.assign({ batchTimer: undefined });
        return;
      }
      if (params?.whenFree && handlerBusy(context.env.limiter)) {
        enqueue.assign({ batchTimer: WAITING_FOR_HANDLER });
        return;
      }
      const deliveries = [...context.pending.deliveries];
      const { since } = context.pending;
      enqueue(() => startJob(`job.${context.nextJobId}`, deliveries, since, context));
      enqueue.assign({
        pending: EMPTY_BATCH,
        batchTimer: undefined,
        nextJobId: context.nextJobId + 1,
        jobsInFlight: context.jobsInFlight + 1,
        deliveriesInFlight: context.deliveriesInFlight + deliveries.length,
      });
    }),
    finishJob: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'warren.jobs.finished') return;
      const counts = { ...context.counts };
      let next: number | undefined;
      let finished = 0;
      for (const output of event.outputs) {
        finished += output.outcomes.length;
        const windowFull = context.env.windowFull.delete(output.jobId);
        for (const { outcome, code } of output.outcomes) {
          counts[COUNTED[outcome]] += 1;
          if (code === 'WARREN_DEADLINE_EXCEEDED' && outcome !== 'retried') counts.expired += 1;
        }
        if (output.handleMs !== undefined && context.env.controller !== undefined) {
          next =
            context.env.controller.observe({
              size: output.outcomes.length,
              maxSize: context.env.batch.maxSize,
              durationMs: output.handleMs,
              windowFull,
            }) ?? next;
        }
      }
      const fault = event.outputs.find((output) => output.fault !== undefined)?.fault;
      enqueue.assign({
        jobsInFlight: context.jobsInFlight - event.outputs.length,
        deliveriesInFlight: context.deliveriesInFlight - finished,
        counts,
        ...(fault === undefined ? {} : { error: fault }),
      });
      if (next !== undefined) {
        enqueue.assign({ prefetch: next });
        if (!context.probation) enqueue(() => applyPrefetch(context, next));
      }
    }),
    abortJobs: ({ context }) => context.env.shutdown.abort(),
    /**
     * A failed consumer gives back what it has not started and stops its subscription; its
     * aborted jobs settle as they end, and the channel closes when they have.
     */
    letGo: ({ context }) => {
      context.batchTimer?.cancel();
      const { logger } = context.env.jobDeps;
      for (const delivery of context.pending.deliveries) giveBack(delivery, context.env.jobDeps);
      context.subscription?.cancel().catch((error: unknown) => {
        logger.warn({ err: error }, 'a failed consumer could not cancel its subscription');
      });
    },
    endProbation: enqueueActions(({ context, enqueue }) => {
      if (!context.probation || !context.freshSeen || !context.subscription) return;
      enqueue.assign({ probation: false });
      enqueue(() => raisePrefetch(context));
    }),
    startDraining: ({ context }) => context.env.draining.abort(),
  },
}).createMachine({
  id: 'consumer',
  context: ({ input: { prefetch, ...env }, self }) => {
    // A batch whose wait ended while every handler call was taken starts when one ends.
    env.limiter.on('next', () => {
      const snapshot = self.getSnapshot();
      if (snapshot.status === 'active' && snapshot.context.batchTimer === WAITING_FOR_HANDLER) {
        self.send({ type: 'warren.handler.free' });
      }
    });
    return {
      env: {
        ...env,
        windowFull: new Set(),
        reportJob: inOneEvent(
          (outputs: JobOutput[]) => {
            // Jobs abandoned by a failed consumer may still finish; nobody is listening then.
            if (self.getSnapshot().status === 'active')
              self.send({ type: 'warren.jobs.finished', outputs });
          },
          REAL_SET_IMMEDIATE,
          // A fault stops the consumer now, before the broker hands its deliveries to it again.
          (output) => output.fault !== undefined,
        ),
      },
      prefetch,
      jobsInFlight: 0,
      deliveriesInFlight: 0,
      nextJobId: 1,
      pending: EMPTY_BATCH,
      stopRequested: false,
      probation: true,
      freshSeen: false,
      counts: { ...NO_COUNTS },
    };
  },
  initial: 'idle',
  states: {
    idle: {
      on: {
        'warren.consumer.start': 'connecting',
        'warren.consumer.stop': 'stopped',
      },
    },
    connecting: {
      on: {
        'warren.consumer.stop': { actions: assign({ stopRequested: true }) },
        // The broker may deliver before the subscribe promise settles.
        'warren.deliveries.received': { actions: 'collect' },
        'warren.batch.due': { actions: 'flush' },
        'warren.jobs.finished': { actions: 'finishJob' },
      },
      invoke: {
        src: 'subscribe',
        input: ({ context, self }) => ({ jobDeps: context.env.jobDeps, self }),
        onDone: [
          {
            guard: 'stopRequested',
            target: 'draining',
            actions: assign({ subscription: ({ event }) => event.output }),
          },
          { target: 'consuming', actions: assign({ subscription: ({ event }) => event.output }) },
        ],
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    consuming: {
      entry: 'endProbation',
      on: {
        'warren.deliveries.received': { actions: 'collect' },
        'warren.batch.due': { actions: { type: 'flush', params: { whenFree: true } } },
        'warren.handler.free': {
          guard: ({ context }) => context.batchTimer === WAITING_FOR_HANDLER,
          actions: { type: 'flush', params: { whenFree: true } },
        },
        'warren.jobs.finished': [
          {
            guard: ({ event }) => event.outputs.some((output) => output.fault !== undefined),
            target: 'failed',
            actions: 'finishJob',
          },
          { actions: 'finishJob' },
        ],
        'warren.consumer.stop': 'draining',
        'warren.consumer.cancelled': {
          target: 'failed',
          actions: assign({
            error: ({ event }) => new Error(`the broker cancelled the consumer: ${event.reason}`),
          }),
        },
      },
    },
    draining: {
      initial: 'cancelling',
      entry: ['startDraining', 'flush'],
      on: {
        // Not started yet: the job step sees the drain and sends it back to the queue.
        'warren.deliveries.received': { actions: ['collect', 'flush'] },
        'warren.batch.due': { actions: 'flush' },
        'warren.jobs.finished': { actions: 'finishJob' },
      },
      after: { drainTimeout: { actions: 'abortJobs' } },
      states: {
        cancelling: {
          invoke: {
            src: 'unsubscribe',
            input: ({ context }) => ({ subscription: context.subscription }),
            onDone: 'finishing',
            onError: 'finishing',
          },
        },
        finishing: {
          always: { guard: 'idle', target: '#consumer.stopped' },
        },
      },
    },
    stopped: { type: 'final' },
    failed: { type: 'final', entry: ['abortJobs', 'letGo'] },
  },
  output: ({ context }) => ({ counts: context.counts, error: context.error }),
});

export type ConsumerActor = ActorRefFrom<typeof consumerMachine>;
