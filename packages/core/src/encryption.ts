import { HEADERS } from './envelope.ts';
import type { DecryptionRefusal } from './errors.ts';
import type { Delivery, HeaderValue, MessageProperties } from './transport.ts';

/**
 * Encrypts job bodies at publish. Core defines the seam; `@warren/security` implements it
 * (`createEncryptor`), so that core depends on no cipher or key format.
 */
export interface JobEncryptor {
  /**
   * The body to send in place of `body`, and the headers that say how it was sealed, for a job
   * with these properties as they will be sent (the ciphertext may be bound to them). A signer
   * runs after, over the ciphertext.
   */
  encrypt(body: Buffer, properties: MessageProperties): EncryptedBody | Promise<EncryptedBody>;
}

export interface EncryptedBody {
  body: Buffer;
  headers: Record<string, HeaderValue>;
}

/** What a decryptor made of one encrypted delivery. */
export type Decryption =
  | { decrypted: true; plaintext: Buffer; keyId: string }
  | {
      decrypted: false;
      reason: Exclude<DecryptionRefusal, 'no-decryptor' | 'unencrypted'>;
      message: string;
      keyId?: string;
    };

/**
 * Opens encrypted job bodies in the job's `verifying` state, after the signature (which covers
 * the ciphertext) and the clearance are checked, and before the plaintext is decoded as JSON.
 * A refusal dead-letters the job, ciphertext and all.
 */
export interface BodyDecryptor {
  /** Refuse jobs that arrive unencrypted (default false). */
  readonly required?: boolean;
  /**
   * Decrypts the body of a delivery that carries `x-warren-encryption`. Returns a refusal for
   * anything wrong with the job; throws only when the decryptor itself failed (a key service
   * unreachable, say), which is retried like a handler failure.
   */
  decrypt(delivery: Delivery): Decryption | Promise<Decryption>;
}

/** Whether a job says its body is encrypted: any `x-warren-encryption` header, even a bad one. */
export function isEncrypted(properties: MessageProperties): boolean {
  const value = properties.headers?.[HEADERS.encryption];
  return value !== undefined && value !== null;
}
