import { audit, auditing, identityOf } from './audit.ts';
import { resultProperties } from './envelope.ts';
import { describeThrown, PublishError, UnroutableError, type WarrenError } from './errors.ts';
import {
  deadLetterProperties,
  reasonFor,
  retryProperties,
  withoutBookkeeping,
} from './failure-headers.ts';
import { release, remainingMs } from './job-admission.ts';
import type { JobDeps, JobItem } from './job-steps.ts';
import { isRelayed, isUnverified, type RelayOptions, relayedProperties } from './relay.ts';
import { retryDelay } from './retry.ts';
import { publishTraced } from './traced-publish.ts';
import type { Delivery, MessageProperties, PublishOptions, PublishTarget } from './transport.ts';

/**
 * RabbitMQ's direct reply-to pseudo-queue. The broker returns a mandatory publish to it as
 * unroutable even when it delivers it, so results to it are not published as mandatory.
 */
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** Where a handled item goes next. */
type Route =
  | { kind: 'result' }
  | { kind: 'retry'; error: WarrenError; nextAttempt: number }
  | { kind: 'defer' }
  | { kind: 'dead-letter'; error: WarrenError }
  | { kind: 'drop' }
  | { kind: 'skip' }
  | { kind: 'requeue' }
  | { kind: 'crash'; error: WarrenError };

/** Decides an item's route from what the earlier steps found and the handler's retry policy. */
function routeOf(item: JobItem, deps: JobDeps): Route {
  if (item.interrupted) return { kind: 'requeue' };
  if (item.duplicate) return { kind: 'skip' };
  if (item.deferred) return { kind: 'defer' };
  const error = item.failure;
  if (error === undefined) return { kind: 'result' };

  // Not the job's fault (a model that will not load, say): it goes back, the consumer stops.
  if (error.fate === 'crash') return { kind: 'crash', error };
  if (error.code === 'WARREN_DEADLINE_EXCEEDED' && deps.deadlines.onExpired === 'drop') {
    return { kind: 'drop' };
  }
  const attempt = item.envelope?.attempt ?? 1;
  if (error.fate === 'retry' && attempt < deps.retry.maxAttempts) {
    return { kind: 'retry', error, nextAttempt: attempt + 1 };
  }
  return { kind: 'dead-letter', error };
}

/** Publishes each item's result, retry or dead letter, and waits for the broker's confirms. */
export function publishItems(items: JobItem[], deps: JobDeps): Promise<unknown> | undefined {
  if (items.length !== 1) {
    return Promise.all(items.map((item) => publishItem(item, routeOf(item, deps), deps)));
  }
  // One delivery a job is the common case: no array of promises for it, and no promise at all
  // when it publishes nothing (a result nobody asked for) and no dedupe store is to hear of it.
  const item = items[0]!;
  const route = routeOf(item, deps);
  if (route.kind === 'result' && !wantsResult(item, deps)) {
    return item.claimed && deps.dedupe !== undefined ? complete(item, deps) : undefined;
  }
  return publishItem(item, route, deps);
}

/** Whether a handled job's result is published: always, unless the handler answers only a reply-to. */
function wantsResult(item: JobItem, deps: JobDeps): boolean {
  return item.envelope!.replyTo !== undefined || deps.handler.results !== 'reply-to-only';
}

async function publishItem(item: JobItem, route: Route, deps: JobDeps): Promise<void> {
  try {
    await publishRoute(item, route, deps);
  } catch (error) {
    item.publishFailure = new PublishError(describeThrown(error), { cause: error });
    // The job goes back to its queue: its next delivery must find it free to run, not claimed
    // until the lease ends. (If the broker did take the result after all, the job is answered
    // twice, with the same correlation id.)
    await release(item, deps);
  }
}

/**
 * Sends a fresh delivery that was never started back to its work queue as a new message, then
 * acks it: unlike a nack, this neither marks it redelivered nor counts toward the quorum queue's
 * delivery limit, so a consumer that keeps failing cannot push innocent jobs over it. A
 * redelivered one is nacked, so that a job that crashes every consumer still meets the limit.
 * If the publish fails, the delivery is nacked instead: it is not lost.
 */
export function giveBack(delivery: Delivery, deps: JobDeps): void {
  if (delivery.redelivered) {
    // It has been out before (perhaps it is what crashes consumers): let the limit count it.
    deps.transport.nack(delivery, { requeue: true });
    return;
  }
  const target = { exchange: '', routingKey: deps.topology.queue };
  const relay = relayOf(deps);
  // It was never verified here: unless a relay sent it (and so vouched for it, or marked it), its
  // next worker must check it as a first delivery, not take this worker's account as a voucher.
  const unverified = isRelayed(delivery.properties, relay)
    ? isUnverified(delivery.properties, relay)
    : true;
  const properties = relayedProperties(delivery, withoutBookkeeping(delivery.properties), relay, {
    unverified,
  });
  deps.transport.publish(target, delivery.body, properties).then(
    () => deps.transport.ack(delivery),
    (error: unknown) => {
      deps.logger.warn(
        { err: error, messageId: delivery.properties.messageId },
        'give-back failed; nacked',
      );
      deps.transport.nack(delivery, { requeue: true });
    },
  );
}

async function publishRoute(item: JobItem, route: Route, deps: JobDeps): Promise<void> {
  const { delivery } = item;
  switch (route.kind) {
    case 'result': {
      if (!wantsResult(item, deps)) {
        await complete(item, deps);
        return;
      }
      const properties = resultProperties(item.envelope!, deps.handler.name);
      // A result carries this worker's account, like everything else it publishes.
      const account = deps.relay === undefined ? undefined : deps.transport.account;
      if (account !== undefined) properties.userId = account;
      try {
        const target = resultTarget(item, deps);
        await publish(item, 'result', target, item.result!, properties, deps, {
          mandatory: !target.routingKey.startsWith(DIRECT_REPLY_TO),
        });
      } catch (error) {
        if (!(error instanceof UnroutableError)) throw error;
        // Nobody can receive the result: keep the job, visibly, where it can be replayed.
        item.failure = error;
        await release(item, deps);
        return publishRoute(item, { kind: 'dead-letter', error }, deps);
      }
      await complete(item, deps);
      return;
    }
    case 'retry':
    case 'defer': {
      const attempt = item.envelope?.attempt ?? 1;
      const nextAttempt = route.kind === 'retry' ? route.nextAttempt : attempt;
      const delay = retryDelay(deps.retry, route.kind === 'retry' ? attempt : 1, deps.random);
      const properties =
        route.kind === 'retry'
          ? retryProperties(delivery, {
              ...failureOf(item, route.error, deps),
              nextAttempt,
              ...expiration(item, deps),
            })
          : { ...delivery.properties, ...expiration(item, deps) };
      const relayed = relayedProperties(delivery, properties, relayOf(deps), {
        unverified: item.unverified === true,
      });
      await publish(item, route.kind, delayTarget(delay, deps), delivery.body, relayed, deps);
      if (route.kind === 'retry')
        logFailure(item, route.error, deps, 'job will be retried', { delayMs: delay });
      return;
    }
    case 'requeue': {
      // Back to the work queue as a new message, not a nack: a requeue would count toward the
      // quorum queue's delivery limit and mark the job redelivered, as if it had crashed a worker.
      const target = { exchange: '', routingKey: deps.topology.queue };
      const properties = relayedProperties(
        delivery,
        withoutBookkeeping(delivery.properties),
        relayOf(deps),
      );
      await publish(item, 'requeue', target, delivery.body, properties, deps);
      return;
    }
    case 'dead-letter': {
      const target = {
        exchange: deps.topology.deadLetterExchange,
        routingKey: deps.topology.deadLetterRoutingKey,
      };
      const properties = relayedProperties(
        delivery,
        deadLetterProperties(delivery, failureOf(item, route.error, deps)),
        relayOf(deps),
      );
      await publish(item, 'dead-letter', target, delivery.body, properties, deps);
      logFailure(item, route.error, deps, 'job dead-lettered');
      return;
    }
    default:
      return;
  }
}

/**
 * Publishes for `item` in a `send` span of its job's trace when tracing: the message carries that
 * span's context, so a retry's next attempt, a dead letter's reader and a result's requester all
 * continue the job's trace. The failure headers keep `traceparent`, `tracestate` and `baggage`
 * (only the broker's bookkeeping headers are dropped), so without tracing they pass on unchanged.
 */
async function publish(
  item: JobItem,
  action: string,
  target: PublishTarget,
  body: Buffer,
  properties: MessageProperties,
  deps: JobDeps,
  options?: PublishOptions,
): Promise<void> {
  const where = deps.telemetry?.publishTrace(item);
  await publishTraced(deps.transport, target, body, properties, options, where);
  if (auditing(deps.audit)) auditPublish(item, action, target, deps);
}

/** One audit record for a publish the broker confirmed, on behalf of `item`'s job. */
function auditPublish(item: JobItem, action: string, target: PublishTarget, deps: JobDeps): void {
  const messageId = item.delivery.properties.messageId;
  audit(
    deps.audit,
    {
      event: 'warren.job.published',
      decision: 'accepted',
      action,
      identity: identityOf({ user: deps.transport.account }),
      tenant: item.envelope?.tenant,
      queue: target.exchange === '' ? target.routingKey : `${target.exchange}/${target.routingKey}`,
      messageId,
    },
    deps.clock.now(),
    (error) => deps.logger.error({ err: error, messageId }, 'audit failed'),
  );
}

/**
 * Acks what was published. A result or retry that could not be published goes back to the
 * queue (the consumer stops, and its delivery limit guards against a loop); a dead letter that
 * could not be published is rejected, so the queue's own dead-letter exchange keeps it.
 */
export function settleItems(items: JobItem[], deps: JobDeps): void {
  for (const item of items) {
    const route = routeOf(item, deps);
    if (route.kind === 'crash') {
      // A nack, not a republish: the delivery limit still catches a job that crashes every
      // consumer it reaches.
      deps.transport.nack(item.delivery, { requeue: true });
      item.outcome = 'requeued';
      logFailure(item, route.error, deps, 'job returned to its queue; the consumer stops');
    } else if (item.publishFailure === undefined) {
      deps.transport.ack(item.delivery);
      item.outcome = OUTCOMES[route.kind];
    } else if (route.kind === 'dead-letter') {
      deps.transport.nack(item.delivery, { requeue: false });
      item.outcome = 'dead-lettered';
    } else {
      deps.transport.nack(item.delivery, { requeue: true });
      item.outcome = 'requeued';
    }
  }
}

const OUTCOMES = {
  result: 'succeeded',
  retry: 'retried',
  defer: 'deferred',
  'dead-letter': 'dead-lettered',
  drop: 'dropped',
  skip: 'duplicate',
  requeue: 'requeued',
  crash: 'requeued',
} as const;

function resultTarget(item: JobItem, deps: JobDeps): PublishTarget {
  const envelope = item.envelope!;
  return envelope.replyTo === undefined
    ? {
        exchange: deps.topology.resultsExchange,
        routingKey: `${envelope.modelType}.${envelope.tenant}`,
      }
    : { exchange: '', routingKey: envelope.replyTo };
}

function delayTarget(delayMs: number, deps: JobDeps): PublishTarget {
  const queue = deps.topology.delayQueues.find((q) => q.delayMs === delayMs);
  if (queue === undefined) {
    throw new Error(`no delay queue of ${delayMs} ms is declared for ${deps.topology.queue}`);
  }
  return { exchange: '', routingKey: queue.name };
}

function failureOf(item: JobItem, error: WarrenError, deps: JobDeps) {
  return {
    error,
    handler: deps.handler.name,
    failedAt: deps.clock.now(),
    attempt: item.envelope?.attempt ?? 1,
  };
}

/** A job with a deadline keeps a broker expiration that ends with it. */
function expiration(item: JobItem, deps: JobDeps): Pick<MessageProperties, 'expiration'> {
  const remaining = item.envelope === undefined ? undefined : remainingMs(item.envelope, deps);
  return remaining === undefined ? {} : { expiration: String(Math.max(1, Math.ceil(remaining))) };
}

async function complete(item: JobItem, deps: JobDeps): Promise<void> {
  if (!item.claimed || deps.dedupe === undefined) return;
  const messageId = item.envelope!.messageId;
  await deps.dedupe.store.complete(messageId, deps.dedupe.ttlMs).catch((error: unknown) => {
    // The result is out; at worst a redelivery runs the handler again.
    deps.logger.warn({ messageId, err: error }, 'dedupe completion failed');
  });
}

function logFailure(
  item: JobItem,
  error: WarrenError,
  deps: JobDeps,
  message: string,
  fields: Record<string, unknown> = {},
): void {
  deps.logger.warn(
    {
      // The logger is the consumer's, which already names the handler.
      messageId: item.delivery.properties.messageId,
      code: error.code,
      reason: reasonFor(error),
      attempt: item.envelope?.attempt ?? 1,
      queue: item.delivery.queue,
      ...fields,
    },
    message,
  );
}

/** The relay options with the transport's current account, which a credential rotation may change. */
function relayOf(deps: JobDeps): RelayOptions | undefined {
  if (deps.relay === undefined) return undefined;
  return { trusted: deps.relay.trusted, user: deps.transport.account };
}
