import { HandlerError, SignatureRefusedError, toWarrenError } from './errors.ts';
import { type JobDeps, type JobItem, live } from './job-steps.ts';

/**
 * The `verifying` step: asks the consumer's verifier about each live item. A refused item
 * carries a {@link SignatureRefusedError} on (it is dead-lettered, never handled). Without a
 * verifier the step does nothing, so every job goes through the same states.
 */
export function verifyItems(items: JobItem[], deps: JobDeps): Promise<void> | undefined {
  const verifier = deps.verifier;
  if (verifier === undefined) return undefined;
  return Promise.all(
    live(items).map(async (item) => {
      try {
        const verdict = await verifier.verify(item.delivery);
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
