import { assign, fromPromise, setup } from 'xstate';
import { publishItems, settleItems } from './job-settle.ts';
import {
  decodeItems,
  handleItems,
  type JobDeps,
  type JobItem,
  type JobOutcome,
  toItems,
  validateItems,
} from './job-steps.ts';
import type { Delivery } from './transport.ts';

export interface JobMachineInput {
  deliveries: readonly Delivery[];
  deps: JobDeps;
}

/** What a finished job reports to its consumer: one outcome per delivery. */
export interface JobMachineOutput {
  outcomes: Array<{ messageId: string | undefined; outcome: JobOutcome; code?: string }>;
  /** How long the handler ran for these deliveries (ms); undefined when it did not run. */
  handleMs: number | undefined;
  /**
   * Set when a publish failed or a step threw: the transport is likely broken and the consumer
   * should stop (its unsettled deliveries return to the queue with its channel).
   */
  fault?: unknown;
}

type Step = (items: JobItem[], deps: JobDeps) => Promise<JobItem[]>;

function step(run: Step) {
  return fromPromise<JobItem[], { items: JobItem[]; deps: JobDeps }>(({ input }) =>
    run(input.items, input.deps),
  );
}

/**
 * One job's way through the worker, as states: `decoding`, `validating`, `handling`,
 * `publishing`, `settling`, then `done`. A job is a list of deliveries (one today; a batch
 * when batching arrives), and each step works on the whole list.
 */
export const jobMachine = setup({
  types: {
    context: {} as { items: JobItem[]; deps: JobDeps; error?: unknown },
    input: {} as JobMachineInput,
    output: {} as JobMachineOutput,
  },
  actors: {
    decode: step(decodeItems),
    validate: step(validateItems),
    handle: step(handleItems),
    publish: step(publishItems),
    settle: step(settleItems),
  },
}).createMachine({
  id: 'job',
  context: ({ input }) => ({ items: toItems(input.deliveries), deps: input.deps }),
  initial: 'decoding',
  states: {
    decoding: {
      invoke: {
        src: 'decode',
        input: ({ context }) => context,
        onDone: { target: 'validating', actions: assign({ items: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    validating: {
      invoke: {
        src: 'validate',
        input: ({ context }) => context,
        onDone: { target: 'handling', actions: assign({ items: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    handling: {
      invoke: {
        src: 'handle',
        input: ({ context }) => context,
        onDone: { target: 'publishing', actions: assign({ items: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    publishing: {
      invoke: {
        src: 'publish',
        input: ({ context }) => context,
        onDone: { target: 'settling', actions: assign({ items: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    settling: {
      invoke: {
        src: 'settle',
        input: ({ context }) => context,
        onDone: { target: 'done', actions: assign({ items: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    done: { type: 'final' },
    /** A step threw: a bug or a broken transport, never a bad message. The consumer crashes. */
    failed: { type: 'final' },
  },
  output: ({ context }) => {
    const outcomes = context.items.map((item) => ({
      messageId: item.delivery.properties.messageId,
      outcome: item.outcome ?? 'requeued',
      ...(item.failure === undefined ? {} : { code: item.failure.code }),
    }));
    const fault =
      context.error ?? context.items.find((item) => item.publishFailure)?.publishFailure;
    const handled = context.items.flatMap((item) =>
      item.handleMs === undefined ? [] : [item.handleMs],
    );
    const handleMs = handled.length === 0 ? undefined : Math.max(...handled);
    return { outcomes, handleMs, ...(fault === undefined ? {} : { fault }) };
  },
});
