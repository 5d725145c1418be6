import { audit, identityOf } from './audit.ts';
import { forbiddenFor } from './clearance.ts';
import { HandlerError, SignatureRefusedError, toWarrenError } from './errors.ts';
import { reasonFor } from './failure-headers.ts';
import { type JobDeps, type JobItem, live } from './job-steps.ts';
import { producerOf } from './relay.ts';
import type { JobVerifier } from './signing.ts';

/**
 * The `verifying` step: the job's signature (when the consumer has a verifier), then the
 * consumer's clearance for its scope, tenant and producer. A refused item carries its error on
 * (it is dead-lettered, never handled). Each delivery's admission, accepted or refused, is
 * audited here: one record per decision.
 */
export function verifyItems(items: JobItem[], deps: JobDeps): Promise<void> | undefined {
  const verifier = deps.verifier;
  if (verifier === undefined) {
    admit(items, deps);
    return undefined;
  }
  return checkSignatures(items, verifier).then(() => admit(items, deps));
}

function checkSignatures(items: JobItem[], verifier: JobVerifier): Promise<void> {
  return Promise.all(
    live(items).map(async (item) => {
      try {
        const verdict = await verifier.verify(item.delivery);
        if (verdict.keyId !== undefined) item.keyId = verdict.keyId;
        if (!verdict.accepted) {
          item.failure = new SignatureRefusedError(verdict.reason, verdict.message);
        }
      } catch (error) {
        // The verifier itself failed (a shared replay store down, say): not the job's fault.
        item.failure = toWarrenError(
          error,
          (message, cause) => new HandlerError(`verifying failed: ${message}`, { cause }),
        );
      }
    }),
  ).then(() => undefined);
}

function admit(items: JobItem[], deps: JobDeps): void {
  for (const item of live(items)) {
    const producer = producerOf(item.delivery.properties, deps.relay);
    const forbidden = forbiddenFor(item.envelope!, producer, deps.clearance);
    if (forbidden !== undefined) item.failure = forbidden;
  }
  if (deps.audit === undefined && deps.telemetry === undefined) return;
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
        ...optional(
          'identity',
          identityOf({
            user: producerOf(properties, deps.relay),
            keyId: item.keyId,
          }),
        ),
        ...optional('tenant', item.envelope?.tenant),
        ...optional('scope', item.envelope?.scope),
        queue: item.delivery.queue,
        ...optional('messageId', properties.messageId),
      },
      now,
      (error) => deps.logger.error({ err: error, messageId: properties.messageId }, 'audit failed'),
    );
  }
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
