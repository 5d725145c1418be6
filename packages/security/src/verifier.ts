import {
  type Delivery,
  HEADERS,
  type HeaderValue,
  type JobVerifier,
  type Verdict,
} from '@warren/core';
import {
  ALGORITHMS,
  type Algorithm,
  CanonicalFormError,
  canonicalBytes,
  signedFields,
} from './canonical.ts';
import type { KeySet } from './keys.ts';
import { MemoryReplayGuard, type ReplayGuard } from './replay-guard.ts';

export const DEFAULT_WINDOW_MS = 5 * 60_000;

export interface SignatureVerifierOptions {
  keys: KeySet;
  /** Refuse unsigned jobs (default true). False lets them through while producers move over. */
  required?: boolean;
  /** The algorithms accepted (default both); a job signed otherwise is refused. */
  algorithms?: readonly Algorithm[];
  /**
   * How far a first delivery's `x-warren-created-at` may lie from the worker's clock, either way
   * (default 5 min). It must cover the longest a job waits in its queue, plus clock skew.
   */
  windowMs?: number;
  /** Remembers accepted message ids for the window (default: one in memory). */
  replayGuard?: ReplayGuard;
  /** Injected for tests; defaults to `Date.now`. */
  now?: () => number;
  /** Told every decision. */
  onDecision?: (delivery: Delivery, verdict: Verdict) => void;
  /**
   * The broker accounts of the workers (see core's relay.ts). A job a worker republished (a
   * retry, a deferral, a give-back) is exempt from the window and the replay guard only when its
   * broker-checked `user_id` is one of these; from anyone else it is a first delivery, whatever
   * its `x-warren-attempt` says, so a replay that claims to be a retry is still refused. Absent
   * or empty: every job that is not a broker redelivery is checked as a first delivery.
   */
  relays?: readonly string[];
}

/**
 * The worker side of signing: a {@link JobVerifier} for `ConsumerOptions.verifier`. Checks, in
 * order, each refusal with its own reason: a signature is present (`unsigned`), its algorithm is
 * allowed (`algorithm-not-allowed`), its key id is in the key set (`unknown-key`), it matches the
 * body and signed headers (`bad-signature`), the job was signed within the window (`stale`), and
 * its message id was not accepted before (`replayed`). A signature is checked before anything is
 * remembered, so forged jobs cannot fill the replay guard with real ids.
 */
export class SignatureVerifier implements JobVerifier {
  readonly #keys: KeySet;
  readonly #required: boolean;
  readonly #algorithms: ReadonlySet<string>;
  readonly #windowMs: number;
  readonly #guard: ReplayGuard;
  readonly #now: () => number;
  readonly #onDecision: SignatureVerifierOptions['onDecision'];
  readonly #relays: ReadonlySet<string>;

  constructor(options: SignatureVerifierOptions) {
    this.#keys = options.keys;
    this.#required = options.required ?? true;
    this.#algorithms = new Set(options.algorithms ?? ALGORITHMS);
    this.#windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.#guard = options.replayGuard ?? new MemoryReplayGuard();
    this.#now = options.now ?? Date.now;
    this.#onDecision = options.onDecision;
    this.#relays = new Set(options.relays ?? []);
  }

  async verify(delivery: Delivery): Promise<Verdict> {
    const verdict = await this.#decide(delivery);
    this.#onDecision?.(delivery, verdict);
    return verdict;
  }

  async #decide(delivery: Delivery): Promise<Verdict> {
    const headers = delivery.properties.headers ?? {};
    const signature = stringOf(headers[HEADERS.signature]);
    const alg = stringOf(headers[HEADERS.signatureAlg]);
    const keyId = stringOf(headers[HEADERS.keyId]);
    if (signature === undefined) {
      if (!this.#required) return { accepted: true };
      return refuse('unsigned', `no ${HEADERS.signature} header`);
    }
    if (alg === undefined || keyId === undefined) {
      const missing = alg === undefined ? HEADERS.signatureAlg : HEADERS.keyId;
      return refuse('bad-signature', `signed, but no ${missing} header`, keyId);
    }
    if (!this.#algorithms.has(alg)) {
      const allowed = [...this.#algorithms].join(', ');
      return refuse('algorithm-not-allowed', `expected ${allowed}, found ${alg}`, keyId);
    }
    const key = this.#keys.get(keyId);
    if (key === undefined)
      return refuse('unknown-key', `key id ${keyId} is not in the key set`, keyId);
    if (key.alg !== alg) {
      return refuse('bad-signature', `key ${keyId} is ${key.alg}, the job says ${alg}`, keyId);
    }

    let data: Buffer;
    try {
      data = canonicalBytes(signedFields(delivery.properties, alg, keyId), delivery.body);
    } catch (error) {
      if (!(error instanceof CanonicalFormError)) throw error;
      return refuse('bad-signature', `cannot be put in canonical form: ${error.message}`, keyId);
    }
    if (!key.verify(data, Buffer.from(signature, 'base64'))) {
      return refuse(
        'bad-signature',
        `does not match the body and signed headers (key ${keyId})`,
        keyId,
      );
    }
    return this.#checkFresh(delivery, keyId);
  }

  /**
   * The window and the replay guard apply to a job's first delivery. A job a relay republished
   * or the broker redelivered carries the same signed fields on purpose, and may come long after.
   */
  async #checkFresh(delivery: Delivery, keyId: string): Promise<Verdict> {
    const { properties } = delivery;
    const createdAt = signedFields(properties, '', '').createdAt;
    if (createdAt === undefined) {
      return refuse('stale', `signed without ${HEADERS.createdAt}, so its age is unknown`, keyId);
    }
    if (!this.#isFirstDelivery(delivery)) return { accepted: true, keyId };

    const now = this.#now();
    const age = now - Number(createdAt);
    if (Math.abs(age) > this.#windowMs) {
      const when = age > 0 ? `${age} ms ago` : `${-age} ms ahead of this worker's clock`;
      return refuse('stale', `signed ${when}, outside the ${this.#windowMs} ms window`, keyId);
    }
    const messageId = properties.messageId;
    if (messageId === undefined || messageId === '') {
      return refuse('bad-signature', 'signed without a message_id', keyId);
    }
    // By key and id: a holder of another key cannot use up this producer's message ids first.
    const seenKey = `${keyId}:${messageId}`;
    if (await this.#guard.seen(seenKey, Number(createdAt) + this.#windowMs, now)) {
      return refuse('replayed', `message id ${messageId} was accepted already`, keyId);
    }
    return { accepted: true, keyId };
  }

  /**
   * Only the broker sets `redelivered`, and only a relay's `user_id` passes the broker's check.
   * The attempt header, which the signature does not cover, proves nothing on its own.
   */
  #isFirstDelivery(delivery: Delivery): boolean {
    // Delivered before, so checked before: this copy was admitted then (or is a job that a
    // crash interrupted while it was refused, the one window every redelivery shares).
    if (delivery.redelivered) return false;
    const { userId, headers } = delivery.properties;
    const relayed = userId !== undefined && this.#relays.has(userId);
    // A relay's retry of a job whose verification failed (a replay store down): never checked.
    return !relayed || headers?.[HEADERS.unverified] === true;
  }
}

function refuse(
  reason: Extract<Verdict, { accepted: false }>['reason'],
  message: string,
  keyId?: string,
): Verdict {
  return { accepted: false, reason, message, ...(keyId === undefined ? {} : { keyId }) };
}

function stringOf(value: HeaderValue | Buffer): string | undefined {
  if (Buffer.isBuffer(value)) return value.toString('utf-8');
  return typeof value === 'string' && value !== '' ? value : undefined;
}
