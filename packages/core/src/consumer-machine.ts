import type PQueue from 'p-queue';
import {
  type ActorRefFrom,
  assign,
  type DoneActorEvent,
  type ErrorActorEvent,
  enqueueActions,
  fromPromise,
  setup,
} from 'xstate';
import { addToBatch, EMPTY_BATCH, type PendingBatch } from './batcher.ts';
import type { Timer } from './clock.ts';
import type { BatchOptions } from './handler.ts';
import { type JobMachineOutput, jobMachine } from './job-machine.ts';
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
}

export type ConsumerEvent =
  | { type: 'warren.consumer.start' }
  | { type: 'warren.consumer.stop' }
  | { type: 'warren.delivery.received'; delivery: Delivery }
  | { type: 'warren.batch.due' }
  | { type: 'warren.consumer.cancelled'; reason: string }
  | DoneActorEvent<JobMachineOutput>
  | ErrorActorEvent;

interface ConsumerContext extends ConsumerMachineInput {
  subscription?: Subscription;
  /**
   * Set while redelivered jobs come first after a restart: prefetch stays at 1, so that a job
   * that crashes the process takes no innocent prefetched job with it toward the delivery limit.
   */
  probation: boolean;
  /** A delivery that is not a redelivery has arrived: probation can end. */
  freshSeen: boolean;
  jobsInFlight: number;
  nextJobId: number;
  /** Deliveries waiting for their batch to fill (see {@link addToBatch}). */
  pending: PendingBatch;
  /** Flushes the pending batch when its wait is over. */
  batchTimer?: Timer;
  stopRequested: boolean;
  counts: ConsumerCounts;
  error?: unknown;
}

type SubscribeInput = Pick<ConsumerContext, 'jobDeps' | 'prefetch'> & {
  self: { send(event: ConsumerEvent): void };
};

/**
 * Connects, declares the model type's topology and subscribes with prefetch set. Each
 * delivery, and a broker-side cancel, comes back to the machine as an event.
 */
const subscribe = fromPromise<Subscription, SubscribeInput>(async ({ input }) => {
  const { transport, topology } = input.jobDeps;
  await transport.connect();
  await transport.declare(topology);
  return transport.consume(
    topology.queue,
    {
      prefetch: 1,
      onCancel: (reason) => input.self.send({ type: 'warren.consumer.cancelled', reason }),
    },
    (delivery) => input.self.send({ type: 'warren.delivery.received', delivery }),
  );
});

const unsubscribe = fromPromise<void, { subscription: Subscription | undefined }>(({ input }) =>
  input.subscription === undefined ? Promise.resolve() : input.subscription.cancel(),
);

/** Raises prefetch from 1 to the configured value once fresh jobs arrive after a restart. */
function raisePrefetch(context: ConsumerContext): void {
  if (context.prefetch !== 1) applyPrefetch(context, context.prefetch);
}

function applyPrefetch(context: ConsumerContext, prefetch: number): void {
  const { subscription, jobDeps, controller } = context;
  if (subscription === undefined) return;
  const decision = controller?.decisions.at(-1);
  if (decision?.to === prefetch) jobDeps.logger.info({ ...decision }, 'prefetch adjusted');
  subscription.setPrefetch(prefetch).catch((error: unknown) => {
    jobDeps.logger.warn({ err: error, prefetch }, 'prefetch could not be changed');
  });
}

/**
 * A queue consumer's lifecycle: `idle`, `connecting`, `consuming`, `draining`, then `stopped`
 * (or `failed`). Each delivery becomes a job actor (see {@link jobMachine}) spawned as a child;
 * the consumer counts their outcomes and waits for them when draining.
 */
export const consumerMachine = setup({
  types: {
    context: {} as ConsumerContext,
    input: {} as ConsumerMachineInput,
    events: {} as ConsumerEvent,
  },
  actors: { subscribe, unsubscribe, job: jobMachine },
  delays: { drainTimeout: ({ context }) => context.drainTimeoutMs },
  guards: {
    idle: ({ context }) => context.jobsInFlight === 0 && context.pending.deliveries.length === 0,
    stopRequested: ({ context }) => context.stopRequested,
  },
  actions: {
    collect: enqueueActions(({ context, event, enqueue, self }) => {
      if (event.type !== 'warren.delivery.received') return;
      if (context.probation && !event.delivery.redelivered) {
        // Before the subscription is known (a backlog delivers at once), raise on entering consuming.
        enqueue.assign({ freshSeen: true });
        if (context.subscription) {
          enqueue.assign({ probation: false });
          enqueue(() => raisePrefetch(context));
        }
      }
      const { ready, pending } = addToBatch(context.pending, event.delivery, context.batch);
      let { nextJobId, batchTimer } = context;
      for (const deliveries of ready) {
        enqueue.spawnChild('job', {
          id: `job.${nextJobId}`,
          input: { deliveries, deps: context.jobDeps },
        });
        nextJobId += 1;
      }
      if (ready.length > 0) {
        batchTimer?.cancel();
        batchTimer = undefined;
      }
      if (pending.deliveries.length > 0 && batchTimer === undefined) {
        batchTimer = context.jobDeps.clock.setTimer(
          () => self.send({ type: 'warren.batch.due' }),
          context.batch.maxWaitMs,
        );
      }
      enqueue.assign({
        pending,
        batchTimer,
        nextJobId,
        jobsInFlight: context.jobsInFlight + ready.length,
        counts: { ...context.counts, received: context.counts.received + 1 },
      });
    }),
    /** Starts the pending batch as it is: its wait is over, or the consumer is draining. */
    flush: enqueueActions(({ context, enqueue }) => {
      context.batchTimer?.cancel();
      if (context.pending.deliveries.length === 0) {
        enqueue.assign({ batchTimer: undefined });
        return;
      }
      enqueue.spawnChild('job', {
        id: `job.${context.nextJobId}`,
        input: { deliveries: [...context.pending.deliveries], deps: context.jobDeps },
      });
      enqueue.assign({
        pending: EMPTY_BATCH,
        batchTimer: undefined,
        nextJobId: context.nextJobId + 1,
        jobsInFlight: context.jobsInFlight + 1,
      });
    }),
    finishJob: enqueueActions(({ context, event, enqueue }) => {
      const done = event as DoneActorEvent<JobMachineOutput>;
      const output = done.output;
      // xstate keeps a finished child until it is stopped, and copies the children on every
      // spawn: without this, each job costs more than the one before.
      enqueue.stopChild(done.actorId);
      const counts = { ...context.counts };
      for (const { outcome, code } of output.outcomes) {
        counts[COUNTED[outcome]] += 1;
        if (code === 'WARREN_DEADLINE_EXCEEDED' && outcome !== 'retried') counts.expired += 1;
      }
      enqueue.assign({
        jobsInFlight: context.jobsInFlight - 1,
        counts,
        ...(output.fault === undefined ? {} : { error: output.fault }),
      });
      const next =
        output.handleMs === undefined
          ? undefined
          : context.controller?.observe({
              size: output.outcomes.length,
              maxSize: context.batch.maxSize,
              durationMs: output.handleMs,
            });
      if (next !== undefined) {
        enqueue.assign({ prefetch: next });
        if (!context.probation) enqueue(() => applyPrefetch(context, next));
      }
    }),
    abortJobs: ({ context }) => context.shutdown.abort(),
    endProbation: enqueueActions(({ context, enqueue }) => {
      if (!context.probation || !context.freshSeen || !context.subscription) return;
      enqueue.assign({ probation: false });
      enqueue(() => raisePrefetch(context));
    }),
    startDraining: ({ context }) => context.draining.abort(),
  },
}).createMachine({
  id: 'consumer',
  context: ({ input }) => ({
    ...input,
    jobsInFlight: 0,
    nextJobId: 1,
    pending: EMPTY_BATCH,
    stopRequested: false,
    probation: true,
    freshSeen: false,
    counts: { ...NO_COUNTS },
  }),
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
        'warren.delivery.received': { actions: 'collect' },
        'warren.batch.due': { actions: 'flush' },
        'xstate.done.actor.job.*': { actions: 'finishJob' },
      },
      invoke: {
        src: 'subscribe',
        input: ({ context, self }) => ({
          jobDeps: context.jobDeps,
          prefetch: context.prefetch,
          self,
        }),
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
        'warren.delivery.received': { actions: 'collect' },
        'warren.batch.due': { actions: 'flush' },
        'xstate.done.actor.job.*': [
          {
            guard: ({ event }) =>
              (event as DoneActorEvent<JobMachineOutput>).output.fault !== undefined,
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
        'warren.delivery.received': { actions: ['collect', 'flush'] },
        'warren.batch.due': { actions: 'flush' },
        'xstate.done.actor.job.*': { actions: 'finishJob' },
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
    failed: { type: 'final', entry: 'abortJobs' },
  },
  output: ({ context }) => ({ counts: context.counts, error: context.error }),
});

export type ConsumerActor = ActorRefFrom<typeof consumerMachine>;
