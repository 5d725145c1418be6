import type { RecoveryOptions } from './recovery-policy.ts';

/** A user name and password to log in to the broker with. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Where a transport's credentials come from (a mounted secret, a secrets manager), so that they
 * can change while it runs.
 */
export interface CredentialsProvider {
  /**
   * Optional: the user name of the credentials, when the provider knows it before the transport
   * first reads them; the transport's `account` until then.
   */
  readonly username?: string | undefined;
  /**
   * The credentials to dial with now; read before every connection. A rejection fails that
   * connection attempt (and so the attempt to connect, reconnect or rotate) with its message,
   * which must not hold the secret.
   */
  read(): Promise<Credentials>;
  /**
   * Optional: called once the transport first connects, with the function to call whenever the
   * credentials have changed (the transport then rotates to them); returns the function that
   * stops watching, which the transport calls when it closes.
   */
  watch?(changed: () => void): () => void;
}

/** How a failed rotation is tried again: the backoff fields of {@link RecoveryOptions}. */
export type RotationRetryOptions = Omit<RecoveryOptions, 'giveUpAfterMs'>;

/**
 * Slower than reconnecting: the old connection still works, and a broker that refuses a login
 * logs each refusal.
 */
export const DEFAULT_ROTATION_RETRY: Required<RotationRetryOptions> = {
  initialDelayMs: 1_000,
  multiplier: 2,
  maxDelayMs: 60_000,
  jitter: 0.5,
};
