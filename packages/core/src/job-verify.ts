import { audit, auditing, identityOf } from './audit.ts';
import { forbiddenFor } from './clearance.ts';
import type { BodyDecryptor, Decryption } from './encryption.ts';
import { decodeJsonBody, HEADERS } from './envelope.ts';
import {
  DecryptionRefusedError,
  HandlerError,
  SignatureRefusedError,
  toWarrenError,
} from './errors.ts';
import { reasonFor } from './failure-headers.ts';
import { isLive, type JobDeps, type JobItem } from './job-steps.ts';
import { producerOf } from './relay.ts';
import type { JobVerifier } from './signing.ts';

/**
 * The `verifying` step: the job's signature (when the consumer has a verifier), then the
 * consumer's clearance for its scope, tenant and producer, then its encrypted body opened and
 * decoded (see encryption.ts). A refused item carries its error on (it is dead-lettered, never
 * handled). Each delivery's admission, accepted or refused, is audited here: one record per
 * decision.
 */
export function verifyItems(items: JobItem[], deps: JobDeps): Promise<void> | undefined {
  const verifier = deps.verifier;
  if (verifier === undefined) return admit(items, deps);
  return checkSignatures(items, verifier).then(() => admit(items, deps));
}

function checkSignatures(items: JobItem[], verifier: JobVerifier): Promise<void> {
  return Promise.all(
    items.filter(isLive).map(async (item) => {
      try {
        const verdict = await verifier.verify(item.delivery);
        if (verdict.keyId !== undefined) item.keyId = verdict.keyId;
        if (!verdict.accepted) {
          item.failure = new SignatureRefusedError(verdict.reason, verdict.message);
        }
      } catch (error) {
        // The verifier itself failed (a shared replay store down, say): not the job's fault, so
        // it is retried, but marked so that its retry is checked as a first delivery (its
        // replay check never happened) although a worker republished it.
        item.unverified = true;
        item.failure = toWarrenError(
          error,
          (message, cause) => new HandlerError(`verifying failed: ${message}`, { cause }),
        );
      }
    }),
  ).then(() => undefined);
}

function admit(items: JobItem[], deps: JobDeps): Promise<void> | undefined {
  for (const item of items) {
    if (!isLive(item)) continue;
    const producer = producerOf(item.delivery.properties, deps.relay);
    const forbidden = forbiddenFor(item.envelope!, producer, deps.clearance);
    if (forbidden !== undefined) item.failure = forbidden;
  }
  const opening = openBodies(items, deps.decryptor);
  if (opening === undefined) {
    recordAdmissions(items, deps);
    return undefined;
  }
  return opening.then(() => recordAdmissions(items, deps));
}

/**
 * Decrypts the sealed bodies of the items still admitted, then decodes the plaintext as JSON
 * (the one decoder plaintext jobs went through in `decoding`). Without a decryptor, a sealed job
 * is refused; with one that requires encryption, so is a plaintext job. Returns a promise only
 * when the decryptor did: plaintext jobs on a worker without one cost a loop and nothing more.
 */
function openBodies(
  items: JobItem[],
  decryptor: BodyDecryptor | undefined,
): Promise<void> | undefined {
  let pending: Array<Promise<void>> | undefined;
  for (const item of items) {
    if (item.failure !== undefined) continue;
    if (!item.encrypted) {
      if (decryptor?.required === true) {
        item.failure = new DecryptionRefusedError(
          'unencrypted',
          `expected an encrypted body (${HEADERS.encryption}), found plaintext`,
        );
      }
      continue;
    }
    if (decryptor === undefined) {
      item.failure = new DecryptionRefusedError(
        'no-decryptor',
        'the body is encrypted, and this worker holds no encryption keys',
      );
      continue;
    }
    let decryption: Decryption | Promise<Decryption>;
    try {
      decryption = decryptor.decrypt(item.delivery);
    } catch (error) {
      decryptorFailed(item, error);
      continue;
    }
    if (decryption instanceof Promise) {
      pending ??= [];
      pending.push(
        decryption.then(
          (settled) => openWith(item, settled),
          (error: unknown) => decryptorFailed(item, error),
        ),
      );
    } else openWith(item, decryption);
  }
  return pending === undefined ? undefined : Promise.all(pending).then(() => undefined);
}

function openWith(item: JobItem, decryption: Decryption): void {
  if (!decryption.decrypted) {
    item.failure = new DecryptionRefusedError(decryption.reason, decryption.message);
    return;
  }
  try {
    item.body = decodeJsonBody(decryption.plaintext, item.envelope!.contentType);
  } catch (error) {
    item.failure = toWarrenError(error, (message, cause) => new HandlerError(message, { cause }));
  }
}

/** The decryptor itself failed (a key service down, say): not the job's fault, so retried. */
function decryptorFailed(item: JobItem, error: unknown): void {
  item.failure = toWarrenError(
    error,
    (message, cause) => new HandlerError(`decrypting failed: ${message}`, { cause }),
  );
}

function recordAdmissions(items: JobItem[], deps: JobDeps): void {
  if (!auditing(deps.audit)) return;
  const now = deps.clock.now();
  for (const item of items) {
    const { properties } = item.delivery;
    const refused = item.failure !== undefined;
    audit(
      deps.audit,
      {
        event: 'warren.job.admitted',
        decision: refused ? 'refused' : 'accepted',
        ...(refused ? { reason: reasonFor(item.failure!), message: item.failure!.message } : {}),
        identity: identityOf({ user: producerOf(properties, deps.relay), keyId: item.keyId }),
        tenant: item.envelope?.tenant,
        scope: item.envelope?.scope,
        queue: item.delivery.queue,
        messageId: properties.messageId,
      },
      now,
      (error) => deps.logger.error({ err: error, messageId: properties.messageId }, 'audit failed'),
    );
  }
}
