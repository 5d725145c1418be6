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
import { type JobMachineOutput, jobMachine } from './job-machine.ts';
import type { JobDeps } from './job-steps.ts';
import type { Delivery, Subscription } from './transport.ts';

/** Counts of what a consumer has done, by outcome. */
export interface ConsumerCounts {
  received: number;
  succeeded: number;
  deadLettered: number;
  requeued: number;
}

export interface ConsumerMachineInput {
  jobDeps: JobDeps;
  prefetch: number;
  /** How long draining waits for started jobs before aborting them (they are requeued). */
  drainTimeoutMs: number;
  shutdown: AbortController;
  limiter: PQueue;
}

export type ConsumerEvent =
  | { type: 'warren.consumer.start' }
  | { type: 'warren.consumer.stop' }
  | { type: 'warren.delivery.received'; delivery: Delivery }
  | { type: 'warren.consumer.cancelled'; reason: string }
  | DoneActorEvent<JobMachineOutput>
  | ErrorActorEvent;

interface ConsumerContext extends ConsumerMachineInput {
  subscription?: Subscription;
  jobsInFlight: number;
  nextJobId: number;
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
      prefetch: input.prefetch,
      onCancel: (reason) => input.self.send({ type: 'warren.consumer.cancelled', reason }),
    },
    (delivery) => input.self.send({ type: 'warren.delivery.received', delivery }),
  );
});

const unsubscribe = fromPromise<void, { subscription: Subscription | undefined }>(({ input }) =>
  input.subscription === undefined ? Promise.resolve() : input.subscription.cancel(),
);

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
    idle: ({ context }) => context.jobsInFlight === 0,
    stopRequested: ({ context }) => context.stopRequested,
  },
  actions: {
    startJob: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'warren.delivery.received') return;
      const id = `job-${context.nextJobId}`;
      enqueue.spawnChild('job', {
        id,
        input: { deliveries: [event.delivery], deps: context.jobDeps },
      });
      enqueue.assign({
        jobsInFlight: context.jobsInFlight + 1,
        nextJobId: context.nextJobId + 1,
        counts: { ...context.counts, received: context.counts.received + 1 },
      });
    }),
    finishJob: assign(({ context, event }) => {
      const output = (event as DoneActorEvent<JobMachineOutput>).output;
      const counts = { ...context.counts };
      for (const { outcome } of output.outcomes) {
        if (outcome === 'succeeded') counts.succeeded += 1;
        else if (outcome === 'dead-lettered') counts.deadLettered += 1;
        else counts.requeued += 1;
      }
      return {
        jobsInFlight: context.jobsInFlight - 1,
        counts,
        ...(output.fault === undefined ? {} : { error: output.fault }),
      };
    }),
    /** A delivery that arrives while draining has not started: it goes back to the queue. */
    returnDelivery: ({ context, event }) => {
      if (event.type !== 'warren.delivery.received') return;
      context.jobDeps.transport.nack(event.delivery, { requeue: true });
    },
    abortJobs: ({ context }) => context.shutdown.abort(),
  },
}).createMachine({
  id: 'consumer',
  context: ({ input }) => ({
    ...input,
    jobsInFlight: 0,
    nextJobId: 1,
    stopRequested: false,
    counts: { received: 0, succeeded: 0, deadLettered: 0, requeued: 0 },
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
      on: { 'warren.consumer.stop': { actions: assign({ stopRequested: true }) } },
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
      on: {
        'warren.delivery.received': { actions: 'startJob' },
        'xstate.done.actor.*': [
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
      on: {
        'warren.delivery.received': { actions: 'returnDelivery' },
        'xstate.done.actor.*': { actions: 'finishJob' },
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
