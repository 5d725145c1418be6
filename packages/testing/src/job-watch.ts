import {
  HEADERS,
  type HeaderValue,
  type MessageProperties,
  type PublishTarget,
  type TransitionEvent,
} from '@warren/core';

/** What the harness knows of one job (message id) on its way through the worker. */
interface JobTrack {
  /** The state its latest job actor is in; undefined until the consumer receives it. */
  state?: string;
  /** Set while it waits in a delay queue after a failed attempt. */
  retry?: { failedAttempt: number; code: string; message: string };
  /** Set while it waits in a delay queue because another delivery of it was being handled. */
  deferred?: boolean;
}

/**
 * Follows each job through the consumer's transitions and through what the consumer publishes
 * to delay queues, so that a job that is still waiting can be explained.
 */
export class JobWatch {
  readonly #delayQueues: ReadonlySet<string>;
  readonly #jobs = new Map<string, JobTrack>();

  constructor(delayQueues: Iterable<string>) {
    this.#delayQueues = new Set(delayQueues);
  }

  /** The state of the job's latest actor: `decoding`, `handling`, `done`, ... */
  stateOf(messageId: string): string | undefined {
    return this.#jobs.get(messageId)?.state;
  }

  /** Whether some job's handler is running (a batch may be waiting for it to end). */
  anyHandling(): boolean {
    for (const track of this.#jobs.values()) if (track.state === 'handling') return true;
    return false;
  }

  /**
   * Whether the job may be waiting, unstarted, in a batch held back until a running handler
   * ends: it has not started, or not again since an attempt failed or was deferred.
   */
  mayWaitForHandler(messageId: string): boolean {
    const track = this.#jobs.get(messageId);
    const unstarted =
      track?.state === undefined || track.retry !== undefined || track.deferred === true;
    return unstarted && this.anyHandling();
  }

  /** Records a job actor's move; a job that starts again no longer waits in a delay queue. */
  transitioned(event: TransitionEvent): void {
    if (event.actor !== 'job') return;
    for (const messageId of event.messageIds ?? []) {
      if (messageId === undefined) continue;
      const track = this.#track(messageId);
      track.state = event.to;
      if (event.to === 'decoding') {
        delete track.retry;
        delete track.deferred;
      }
    }
  }

  /** Records a message the consumer published; only those bound for a delay queue matter. */
  published(target: PublishTarget, properties: MessageProperties): void {
    if (target.exchange !== '' || !this.#delayQueues.has(target.routingKey)) return;
    const messageId = properties.messageId;
    if (messageId === undefined) return;

    const headers = properties.headers ?? {};
    const code = text(headers[HEADERS.errorCode]);
    const track = this.#track(messageId);
    if (code === undefined) {
      track.deferred = true;
      return;
    }
    const nextAttempt = headers[HEADERS.attempt];
    track.retry = {
      failedAttempt: typeof nextAttempt === 'number' ? nextAttempt - 1 : 1,
      code,
      message: text(headers[HEADERS.errorMessage]) ?? '',
    };
  }

  /** Why the job has neither a result nor a dead letter yet, in a few words. */
  describe(messageId: string): string {
    const track = this.#jobs.get(messageId);
    if (track?.state === undefined) {
      return this.anyHandling()
        ? 'it has not started: its batch waits for a handler call to end (see `concurrency`), ' +
            'or the consumer holds `prefetch` jobs already'
        : 'the consumer has not received it (it holds `prefetch` jobs already?)';
    }
    if (track.state === 'handling') {
      return 'its handler has not returned (or waits for a free slot under `concurrency`)';
    }
    if (track.state !== 'done') return `its job is ${track.state}`;
    if (track.retry !== undefined) {
      const { failedAttempt, code, message } = track.retry;
      return (
        `attempt ${failedAttempt} failed with ${code} (${message}), and attempt ` +
        `${failedAttempt + 1} waits in a delay queue`
      );
    }
    if (track.deferred) {
      return (
        'another delivery of the same message id was being handled, so it waits in a ' +
        'delay queue'
      );
    }
    return (
      'the consumer finished it with neither a result nor a dead letter ' +
      "(expired jobs are dropped when deadlines.onExpired is 'drop')"
    );
  }

  #track(messageId: string): JobTrack {
    let track = this.#jobs.get(messageId);
    if (track === undefined) {
      track = {};
      this.#jobs.set(messageId, track);
    }
    return track;
  }
}

function text(value: HeaderValue): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
