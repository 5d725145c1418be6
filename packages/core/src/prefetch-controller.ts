import type { Clock } from './clock.ts';

/** Bounds of an adaptive prefetch. */
export interface AdaptivePrefetchOptions {
  min: number;
  max: number;
  /**
   * The broker's consumer timeout: prefetch is kept low enough that the last delivery in the
   * window waits at most half of it before its handler starts.
   */
  consumerTimeoutMs?: number;
}

/** One change the controller made, and why. */
export interface PrefetchDecision {
  from: number;
  to: number;
  reason: 'batches-full' | 'latency-grew' | 'consumer-timeout';
  /** UTC epoch milliseconds. */
  at: number;
}

/** What one finished batch tells the controller. */
export interface BatchSample {
  size: number;
  maxSize: number;
  /** How long the handler took for the batch, in milliseconds. */
  durationMs: number;
  /**
   * The batch started short because the prefetch window was full: no more deliveries could come
   * until some were acked, so a larger window is what it lacked. Counts as a full batch.
   */
  windowFull?: boolean;
}

/** Weight of the newest sample in the latency average. */
const SMOOTHING = 0.2;
/** Samples before the average is trusted. */
const WARM_UP = 3;
/** A batch this many times slower than the average means the model is overloaded... */
const SLOWDOWN = 2;
/** ...unless it is slower by less than this: sub-millisecond handlers jitter by several times. */
const MIN_SLOWDOWN_MS = 10;
/** Changes are at least this far apart: each one restarts the consumer on RabbitMQ. */
const MIN_INTERVAL_MS = 1_000;
const MAX_DECISIONS = 50;

/**
 * Adapts a consumer's prefetch to how fast the model goes, additive increase and
 * multiplicative decrease: while batches come full and their latency holds, it grows by one
 * batch; when a batch takes twice the usual time, it halves; and it never lets the window hold
 * more than half a consumer timeout of work. Always within its bounds.
 */
export class PrefetchController {
  readonly #options: AdaptivePrefetchOptions;
  readonly #clock: Clock;
  readonly #decisions: PrefetchDecision[] = [];
  #prefetch: number;
  #averageMs: number | undefined;
  #samples = 0;
  #lastChangeAt = Number.NEGATIVE_INFINITY;

  constructor(options: AdaptivePrefetchOptions, initial: number, clock: Clock) {
    if (!Number.isInteger(options.min) || options.min < 1 || options.max < options.min) {
      throw new RangeError(
        `adaptivePrefetch: expected 1 <= min <= max, found min ${options.min}, max ${options.max}`,
      );
    }
    this.#options = options;
    this.#clock = clock;
    this.#prefetch = Math.min(options.max, Math.max(options.min, initial));
  }

  get prefetch(): number {
    return this.#prefetch;
  }

  /** The most recent decisions, oldest first. */
  get decisions(): readonly PrefetchDecision[] {
    return this.#decisions;
  }

  /** Takes a finished batch into account; returns the new prefetch when it changes. */
  observe(sample: BatchSample): number | undefined {
    const average = this.#averageMs;
    this.#averageMs =
      average === undefined
        ? sample.durationMs
        : average + SMOOTHING * (sample.durationMs - average);
    this.#samples += 1;
    if (this.#samples <= WARM_UP || average === undefined) return undefined;

    const now = this.#clock.now();
    if (now - this.#lastChangeAt < MIN_INTERVAL_MS) return undefined;
    if (sample.durationMs > SLOWDOWN * average && sample.durationMs - average > MIN_SLOWDOWN_MS) {
      return this.#change(Math.floor(this.#prefetch / 2), 'latency-grew', now);
    }
    const cap = this.#timeoutCap(sample.maxSize);
    if (this.#prefetch > cap) return this.#change(cap, 'consumer-timeout', now);
    if (sample.size >= sample.maxSize || sample.windowFull === true) {
      return this.#change(Math.min(cap, this.#prefetch + sample.maxSize), 'batches-full', now);
    }
    return undefined;
  }

  /**
   * The largest prefetch whose last delivery would start within half the consumer timeout, at
   * the average batch time, batches running one after another.
   */
  #timeoutCap(batchSize: number): number {
    const timeout = this.#options.consumerTimeoutMs;
    const average = this.#averageMs;
    if (timeout === undefined || average === undefined || average <= 0) {
      return Number.POSITIVE_INFINITY;
    }
    return Math.floor((timeout / 2 / average) * batchSize);
  }

  #change(wanted: number, reason: PrefetchDecision['reason'], now: number): number | undefined {
    const to = Math.min(this.#options.max, Math.max(this.#options.min, wanted));
    if (to === this.#prefetch) return undefined;
    this.#decisions.push({ from: this.#prefetch, to, reason, at: now });
    if (this.#decisions.length > MAX_DECISIONS) this.#decisions.shift();
    this.#prefetch = to;
    this.#lastChangeAt = now;
    return to;
  }
}
