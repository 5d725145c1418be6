import type { SignatureRefusal } from './errors.ts';
import type { Delivery, HeaderValue, MessageProperties } from './transport.ts';

/**
 * Signs jobs at publish. Core defines the seam; `@warren/security` implements it, so that core
 * depends on no key format or algorithm.
 */
export interface JobSigner {
  /**
   * The headers to add to a job about to be published (the signature, its key id and
   * algorithm), computed over its body and its properties as they will be sent.
   */
  sign(
    body: Buffer,
    properties: MessageProperties,
  ): Record<string, HeaderValue> | Promise<Record<string, HeaderValue>>;
}

/** A verifier's decision about one delivery. */
export type Verdict =
  | {
      accepted: true /** The key that signed it; absent for an unsigned job let through. */;
      keyId?: string;
    }
  | { accepted: false; reason: SignatureRefusal; message: string; keyId?: string };

/**
 * Decides whether a delivery's signature proves who produced it, before the job is validated or
 * handled (the job's `verifying` state). A refusal dead-letters the job with its reason.
 */
export interface JobVerifier {
  verify(delivery: Delivery): Verdict | Promise<Verdict>;
}
