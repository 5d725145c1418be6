import { type Clock, systemClock, type Timer } from './clock.ts';
import { describeThrown } from './errors.ts';
import type { LogSink } from './log-sink.ts';
import { silentLogSink } from './log-sink.ts';

/** What a supervisor needs of an actor it runs: a way to stop it and to learn that it ended. */
export interface SupervisedActor {
  /** Resolves when the actor ends, by itself or after {@link stop}. */
  readonly exited: Promise<{ state: 'stopped' | 'failed'; error?: unknown }>;
  /** Stops it gracefully; resolves when it has. */
  stop(): Promise<unknown>;
}

/** One actor the supervisor keeps running. */
export interface ChildSpec<A extends SupervisedActor = SupervisedActor> {
  /** Names the child in logs, events and health (the handler's name, for a consumer). */
  id: string;
  /**
   * Makes and starts a fresh actor; resolves once it runs. Rejecting counts as a crash, so a
   * model that fails to load is retried like any other failure, and no job is taken meanwhile.
   */
  start(): Promise<A>;
}

/** How soon a crashed child starts again: exponential, from its recent crashes. */
export interface RestartBackoff {
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
}

/** At most `maxRestarts` restarts within `withinMs`; one more crash escalates. */
export interface RestartBudget {
  maxRestarts: number;
  withinMs: number;
}

export interface SupervisorOptions {
  backoff?: Partial<RestartBackoff>;
  budget?: Partial<RestartBudget>;
  clock?: Clock;
  logger?: LogSink;
}

export const DEFAULT_RESTART_BACKOFF: Readonly<RestartBackoff> = Object.freeze({
  initialDelayMs: 1_000,
  multiplier: 2,
  maxDelayMs: 30_000,
});

export const DEFAULT_RESTART_BUDGET: Readonly<RestartBudget> = Object.freeze({
  maxRestarts: 5,
  withinMs: 60_000,
});

/**
 * - `starting`: its actor is being made (the first time, or again after a crash).
 * - `running`: its actor runs.
 * - `restarting`: it crashed and waits out its backoff.
 * - `stopped`: the supervisor stopped it, or it stopped by itself.
 */
export type ChildState = 'starting' | 'running' | 'restarting' | 'stopped';

export interface ChildHealth {
  id: string;
  state: ChildState;
  /** Restarts since the supervisor started. */
  restarts: number;
  /** The last crash, as one line. */
  lastError?: string;
}

/** What the supervisor did, for logs and metrics. */
export type SupervisorEvent =
  | { type: 'crashed'; id: string; error: unknown; restartInMs: number }
  | { type: 'restarted'; id: string; restarts: number }
  | { type: 'escalated'; id: string | undefined; error: unknown };

export interface SupervisorExit {
  /** `escalated`: the restart budget ran out, or {@link Supervisor.escalate} was called. */
  state: 'stopped' | 'escalated';
  error?: unknown;
}

interface Child<A extends SupervisedActor> {
  spec: ChildSpec<A>;
  state: ChildState;
  actor: A | undefined;
  restarts: number;
  /** When it crashed, oldest first, within the budget's window. */
  crashes: number[];
  timer: Timer | undefined;
  /** The start in progress, which a stop waits for. */
  launching: Promise<void> | undefined;
  lastError: string | undefined;
  /** Settles when its first start succeeded, or when the supervisor escalated. */
  firstStart: { promise: Promise<void>; resolve(): void };
}

/**
 * Owns a set of actors (one consumer per handler, in the worker) and keeps them running, one for
 * one: a child that crashes is started again after an exponential backoff while its siblings go
 * on. Restarts share one budget; the crash that would exceed it escalates: every child is
 * stopped and {@link exited} resolves `escalated`, so that the process can exit non-zero and its
 * platform start a fresh one.
 */
export class Supervisor<A extends SupervisedActor = SupervisedActor> {
  readonly #children: Array<Child<A>>;
  readonly #backoff: RestartBackoff;
  readonly #budget: RestartBudget;
  readonly #clock: Clock;
  readonly #logger: LogSink;
  readonly #listeners = new Set<(event: SupervisorEvent) => void>();
  /** Every restart's time, oldest first, within the budget's window. */
  #restartTimes: number[] = [];
  #state: 'idle' | 'running' | 'stopping' | 'done' = 'idle';
  #stopping: Promise<SupervisorExit> | undefined;
  readonly #exited: Promise<SupervisorExit>;
  #resolveExited!: (exit: SupervisorExit) => void;

  constructor(children: ReadonlyArray<ChildSpec<A>>, options: SupervisorOptions = {}) {
    const ids = new Set<string>();
    for (const { id } of children) {
      if (ids.has(id)) throw new RangeError(`children: expected unique ids, found ${id} twice`);
      ids.add(id);
    }
    this.#backoff = { ...DEFAULT_RESTART_BACKOFF, ...options.backoff };
    this.#budget = { ...DEFAULT_RESTART_BUDGET, ...options.budget };
    checkPolicy(this.#backoff, this.#budget);
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogSink;
    this.#children = children.map((spec) => {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      return {
        spec,
        state: 'stopped',
        actor: undefined,
        restarts: 0,
        crashes: [],
        timer: undefined,
        launching: undefined,
        lastError: undefined,
        firstStart: { promise, resolve },
      };
    });
    this.#exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
  }

  /**
   * Starts every child and resolves once each has started, retrying failed starts within the
   * budget. Rejects with the last error if the supervisor escalated meanwhile (everything is
   * stopped by then).
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle')
      throw new Error(`start: expected a new supervisor, found it ${this.#state}`);
    this.#state = 'running';
    for (const child of this.#children) this.#launch(child);
    await Promise.all(this.#children.map((child) => child.firstStart.promise));
    if (this.#state !== 'running') {
      const exit = await this.#exited;
      throw exit.error ?? new Error('the supervisor stopped while its children started');
    }
  }

  /** The running actor of each child (absent while it is starting or restarting). */
  get actors(): ReadonlyArray<{ id: string; actor: A | undefined }> {
    return this.#children.map((child) => ({ id: child.spec.id, actor: child.actor }));
  }

  health(): ChildHealth[] {
    return this.#children.map(({ spec, state, restarts, lastError }) => ({
      id: spec.id,
      state,
      restarts,
      ...(lastError === undefined ? {} : { lastError }),
    }));
  }

  /** Whether it stopped its children for good, asked to or because it escalated. */
  get stopping(): boolean {
    return this.#state === 'stopping' || this.#state === 'done';
  }

  get exited(): Promise<SupervisorExit> {
    return this.#exited;
  }

  onEvent(listener: (event: SupervisorEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops every child gracefully (each drains) and cancels pending restarts. */
  stop(): Promise<SupervisorExit> {
    return this.#finish({ state: 'stopped' });
  }

  /**
   * Gives up on the whole set, for a fault no restart can mend (the broker connection is gone
   * for good, say): stops every child and resolves {@link exited} `escalated`.
   */
  escalate(error: unknown): Promise<SupervisorExit> {
    if (this.#stopping === undefined) this.#emit({ type: 'escalated', id: undefined, error });
    return this.#finish({ state: 'escalated', error });
  }

  #launch(child: Child<A>): void {
    child.state = 'starting';
    child.timer = undefined;
    child.launching = this.#startActor(child).finally(() => {
      child.launching = undefined;
    });
  }

  async #startActor(child: Child<A>): Promise<void> {
    let actor: A;
    try {
      actor = await child.spec.start();
    } catch (error) {
      this.#crashed(child, error);
      return;
    }
    if (this.#state !== 'running') {
      // Stopped while it started: it must not outlive the supervisor.
      await actor.stop().catch(() => {});
      child.state = 'stopped';
      return;
    }
    child.actor = actor;
    child.state = 'running';
    child.firstStart.resolve();
    if (child.restarts > 0)
      this.#emit({ type: 'restarted', id: child.spec.id, restarts: child.restarts });
    void actor.exited.then((exit) => {
      if (child.actor !== actor) return;
      child.actor = undefined;
      if (exit.state === 'failed') this.#crashed(child, exit.error);
      else if (this.#state === 'running') {
        // A child that stops by itself while the supervisor runs is not doing its job.
        this.#crashed(child, new Error(`${child.spec.id} stopped by itself`));
      } else child.state = 'stopped';
    });
  }

  #crashed(child: Child<A>, error: unknown): void {
    if (this.#state !== 'running') {
      child.state = 'stopped';
      return;
    }
    const now = this.#clock.now();
    const windowStart = now - this.#budget.withinMs;
    this.#restartTimes = this.#restartTimes.filter((at) => at > windowStart);
    child.crashes = child.crashes.filter((at) => at > windowStart);
    child.lastError = describeThrown(error);
    if (this.#restartTimes.length >= this.#budget.maxRestarts) {
      this.#logger.error(
        { child: child.spec.id, err: error, restarts: this.#restartTimes.length, ...this.#budget },
        'restart budget spent; escalating',
      );
      this.#emit({ type: 'escalated', id: child.spec.id, error });
      void this.#finish({ state: 'escalated', error });
      return;
    }
    this.#restartTimes.push(now);
    child.crashes.push(now);
    child.restarts += 1;
    const delay = Math.min(
      this.#backoff.maxDelayMs,
      this.#backoff.initialDelayMs * this.#backoff.multiplier ** (child.crashes.length - 1),
    );
    child.state = 'restarting';
    this.#logger.warn(
      { child: child.spec.id, err: error, restartInMs: delay, restarts: child.restarts },
      'actor crashed; restarting it',
    );
    this.#emit({ type: 'crashed', id: child.spec.id, error, restartInMs: delay });
    child.timer = this.#clock.setTimer(() => this.#launch(child), delay);
  }

  #finish(exit: SupervisorExit): Promise<SupervisorExit> {
    this.#stopping ??= (async () => {
      this.#state = 'stopping';
      for (const child of this.#children) {
        child.timer?.cancel();
        child.timer = undefined;
        // Whoever waits for the first start learns the outcome from exited.
        child.firstStart.resolve();
      }
      await Promise.allSettled(
        this.#children.map(async (child) => {
          await child.launching;
          const actor = child.actor;
          if (actor !== undefined) await actor.stop();
          child.state = 'stopped';
        }),
      );
      this.#state = 'done';
      this.#resolveExited(exit);
      return exit;
    })();
    return this.#stopping;
  }

  #emit(event: SupervisorEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#logger.warn({ err: error }, 'supervisor listener threw');
      }
    }
  }
}

function checkPolicy(backoff: RestartBackoff, budget: RestartBudget): void {
  const problems: string[] = [];
  if (!(backoff.initialDelayMs >= 0))
    problems.push(`backoff.initialDelayMs: expected 0 or more, found ${backoff.initialDelayMs}`);
  if (!(backoff.multiplier >= 1))
    problems.push(`backoff.multiplier: expected 1 or more, found ${backoff.multiplier}`);
  if (!(backoff.maxDelayMs >= backoff.initialDelayMs)) {
    problems.push(
      `backoff.maxDelayMs: expected at least initialDelayMs (${backoff.initialDelayMs}), found ${backoff.maxDelayMs}`,
    );
  }
  if (!Number.isInteger(budget.maxRestarts) || budget.maxRestarts < 0) {
    problems.push(
      `budget.maxRestarts: expected an integer of at least 0, found ${budget.maxRestarts}`,
    );
  }
  if (!(budget.withinMs > 0))
    problems.push(`budget.withinMs: expected more than 0, found ${budget.withinMs}`);
  if (problems.length > 0) throw new RangeError(problems.join('; '));
}
