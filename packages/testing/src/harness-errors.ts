import type { HarnessDeadLetter, HarnessResult } from './harness-outcomes.ts';

/** The most characters of a result quoted in an error message. */
const MAX_QUOTE = 200;

/** `harness.result()` found the job dead-lettered; the dead letter is attached. */
export class JobDeadLetteredError extends Error {
  readonly deadLetter: HarnessDeadLetter;

  constructor(deadLetter: HarnessDeadLetter) {
    const { messageId, reason, code, attempts, message } = deadLetter;
    const attemptsText = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
    super(
      `job ${messageId} was dead-lettered instead of answered: ${reason} ` +
        `(${code ?? 'by the broker'}) after ${attemptsText}${message ? `: ${message}` : ''}`,
    );
    this.name = 'JobDeadLetteredError';
    this.deadLetter = deadLetter;
  }
}

/** `harness.deadLetter()` found a result instead; the result is attached. */
export class JobAnsweredError extends Error {
  readonly result: HarnessResult;

  constructor(result: HarnessResult) {
    const quoted = JSON.stringify(result.body) ?? 'undefined';
    const shown = quoted.length > MAX_QUOTE ? `${quoted.slice(0, MAX_QUOTE)}...` : quoted;
    super(`job ${result.messageId} was answered instead of dead-lettered: its result is ${shown}`);
    this.name = 'JobAnsweredError';
    this.result = result;
  }
}

/**
 * The job has neither a result nor a dead letter, and the broker and the consumer are quiet:
 * waiting longer would not change that, only advancing the clock (or nothing) would.
 */
export class JobStillWaitingError extends Error {
  readonly messageId: string;
  /** How far the clock's next timer is (advance at least this much), or undefined for none. */
  readonly nextTimerMs: number | undefined;

  constructor(messageId: string, why: string, nextTimerMs: number | undefined) {
    super(
      nextTimerMs === undefined
        ? `job ${messageId} is still waiting, and nothing is pending on the clock: ${why}`
        : `job ${messageId} is still waiting: ${why}; advance the clock by at least ` +
            `${nextTimerMs} ms (harness.advance) to reach the next timer`,
    );
    this.name = 'JobStillWaitingError';
    this.messageId = messageId;
    this.nextTimerMs = nextTimerMs;
  }
}
