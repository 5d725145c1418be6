import { type Clock, systemClock, type Timer } from '@warren/core';
import { traceLogFields } from '@warren/telemetry';
import { type DestinationStream, type LevelWithSilent, type LogFn, type Logger, pino } from 'pino';

/** pino's numeric levels for the lines that may be collapsed: warn and error, not fatal. */
const WARN = 40;
const ERROR = 50;

/**
 * The fields that name what a warning is about. Two warn or error lines with the same message
 * and the same values here (from the call or the logger's bindings) are the same warning, even
 * when other fields (a message id, an attempt) differ.
 */
export const REPEAT_KEY_FIELDS = ['code', 'handler', 'child', 'queue', 'model', 'detail'] as const;

/**
 * Paths pino replaces with `[redacted]` wherever they appear: credentials a logged object may
 * carry, and the request body of a failed Hugging Face call (a job's input). Warren's own lines
 * already name services by URL without credentials and never include bodies; this catches what
 * an error from a library might bring along.
 */
export const REDACT_PATHS = [
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'err.httpRequest.headers.authorization',
  'err.httpRequest.headers.Authorization',
  'err.httpRequest.body',
  'password',
  '*.password',
  'accessToken',
  '*.accessToken',
];

interface Window {
  logger: Logger;
  method: LogFn;
  message: string;
  subject: Record<string, unknown>;
  repeated: number;
  timer: Timer;
}

/**
 * Collapses repeated warnings: the first warn or error line of a kind is written at once; the
 * same line again within `windowMs` is only counted; when the window closes, one summary line
 * with the same message, the fields that name it and `repeated: N` is written, and the next one
 * is written in full again. A broker outage or a dead dependency thus costs a few lines a window,
 * not one per job. Used as pino's `hooks.logMethod`, so child loggers collapse too.
 */
export class RepeatCollapser {
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #open = new Map<string, Window>();

  constructor(options: { windowMs?: number; clock?: Clock } = {}) {
    this.#windowMs = options.windowMs ?? 10_000;
    this.#clock = options.clock ?? systemClock;
  }

  /** The pino hook: lets a line through, or counts it as a repeat. */
  readonly logMethod = (
    logger: Logger,
    args: Parameters<LogFn>,
    method: LogFn,
    level: number,
  ): void => {
    if (this.#windowMs === 0 || level < WARN || level > ERROR) {
      method.apply(logger, args);
      return;
    }
    const { fields, message } = parts(args);
    const subject = subjectOf(fields, logger);
    const key = JSON.stringify([level, message, subject]);
    const open = this.#open.get(key);
    if (open !== undefined) {
      open.repeated += 1;
      return;
    }
    method.apply(logger, args);
    this.#open.set(key, {
      logger,
      method,
      message,
      // Only what the call named: the logger adds its own bindings to the summary itself.
      subject: pickSubject(fields),
      repeated: 0,
      timer: this.#clock.setTimer(() => this.#close(key), this.#windowMs),
    });
  };

  /** Writes the summary of every open window now (before the process exits). */
  flush(): void {
    for (const key of [...this.#open.keys()]) this.#close(key);
  }

  #close(key: string): void {
    const window = this.#open.get(key);
    if (window === undefined) return;
    this.#open.delete(key);
    window.timer.cancel();
    if (window.repeated === 0) return;
    window.method.call(
      window.logger,
      { ...window.subject, repeated: window.repeated, windowMs: this.#windowMs },
      window.message,
    );
  }
}

export interface WorkerLoggerOptions {
  level?: LevelWithSilent;
  /** Where the JSON lines go (default: stdout). */
  destination?: DestinationStream;
  /** How long repeats of a warning are counted before a summary (default 10 s; 0: never). */
  repeatWindowMs?: number;
  clock?: Clock;
}

/**
 * The worker's pino logger: JSON lines with `service`, the active span's `trace_id`, `span_id`
 * and `trace_flags` on every line written inside a traced job, repeated warnings collapsed (see
 * {@link RepeatCollapser}), and {@link REDACT_PATHS} redacted. Call `repeats.flush()` before
 * exiting so that no count is lost.
 */
export function createWorkerLogger(options: WorkerLoggerOptions = {}): {
  logger: Logger;
  repeats: RepeatCollapser;
} {
  const repeats = new RepeatCollapser({
    ...(options.repeatWindowMs === undefined ? {} : { windowMs: options.repeatWindowMs }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const logger = pino(
    {
      base: { service: 'warren-worker' },
      level: options.level ?? 'info',
      // A summary speaks for many jobs: it takes the trace of none of them.
      mixin: (fields: object) => ('repeated' in fields ? {} : traceLogFields()),
      hooks: {
        logMethod(args, method, level) {
          repeats.logMethod(this, args, method, level);
        },
      },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    options.destination,
  );
  return { logger, repeats };
}

function parts(args: Parameters<LogFn>): { fields: Record<string, unknown>; message: string } {
  const [first, second] = args;
  if (typeof first === 'object' && first !== null) {
    const message =
      typeof second === 'string' ? second : first instanceof Error ? first.message : '';
    return { fields: first as Record<string, unknown>, message };
  }
  return { fields: {}, message: String(first) };
}

function pickSubject(fields: Record<string, unknown>): Record<string, unknown> {
  const subject: Record<string, unknown> = {};
  for (const name of REPEAT_KEY_FIELDS) {
    if (fields[name] !== undefined) subject[name] = fields[name];
  }
  return subject;
}

/** The naming fields of a line: the call's own, else the logger's bindings (`handler`). */
function subjectOf(fields: Record<string, unknown>, logger: Logger): Record<string, unknown> {
  const bindings = logger.bindings();
  const subject: Record<string, unknown> = {};
  for (const name of REPEAT_KEY_FIELDS) {
    const value = fields[name] ?? bindings[name];
    if (value !== undefined) subject[name] = value;
  }
  return subject;
}
