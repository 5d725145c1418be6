import { type Context, context } from '@opentelemetry/api';
import { type AuditSink, audit, identityOf } from './audit.ts';
import type { JobEncryptor } from './encryption.ts';
import { DEFAULT_SCOPE, encodeJob, HEADERS, type JobSpec } from './envelope.ts';
import { JobUnroutableError, UnroutableError } from './errors.ts';
import type { JobSigner } from './signing.ts';
import { jobRoutingKey, type TopologyOptions, topologyFor } from './topology.ts';
import { activeTracer, extractContext, telemetryFailed } from './trace-propagation.ts';
import { publishTraced } from './traced-publish.ts';
import type { Transport } from './transport.ts';

/** What {@link JobPublisher.publish} returns: enough to match the result to the job. */
export interface PublishedJob {
  messageId: string;
  routingKey: string;
}

/** What a {@link JobPublisher} does beyond the defaults. */
export interface JobPublisherOptions {
  /** Signs each job at publish (`@warren/security`'s `createSigner`); absent, jobs are unsigned. */
  signer?: JobSigner;
  /**
   * Encrypts each job's body at publish (`@warren/security`'s `createEncryptor`), before it is
   * signed: the signature then covers the ciphertext. Absent, bodies travel as plain JSON.
   */
  encryptor?: JobEncryptor;
  /**
   * The broker account this producer connects as, sent as each job's `user_id`: the broker
   * refuses any other, so workers can check it against the producers allowed for the scope.
   */
  userId?: string;
  /** Told each job published (confirmed by the broker), for the audit log. */
  audit?: AuditSink;
  /**
   * Whether a job no queue is bound for is refused (default true): `publish` rejects with a
   * `JobUnroutableError` instead of the broker dropping the job unseen, as it would for a misspelt
   * model type, a scope no worker serves, or a job published before any worker declared its
   * queue. False lets such jobs go (and be lost) quietly.
   */
  mandatory?: boolean;
}

/**
 * Publishes jobs the way workers expect them: envelope headers set, routing key derived from
 * model type and scope, and the broker's confirm awaited; encrypted when an encryptor is given,
 * then signed when a signer is given. When a tracer is registered, the publish is a `send` span
 * (kind PRODUCER) whose context, with the baggage, the job carries: the workers' spans for it
 * then join the same trace.
 */
export class JobPublisher {
  readonly #transport: Transport;
  readonly #topology: TopologyOptions;
  readonly #signer: JobSigner | undefined;
  readonly #encryptor: JobEncryptor | undefined;
  readonly #userId: string | undefined;
  readonly #audit: AuditSink | undefined;
  readonly #mandatory: boolean;

  constructor(
    transport: Transport,
    topology: TopologyOptions = {},
    options: JobPublisherOptions = {},
  ) {
    this.#transport = transport;
    this.#topology = topology;
    this.#signer = options.signer;
    this.#encryptor = options.encryptor;
    this.#userId = options.userId;
    this.#audit = options.audit;
    this.#mandatory = options.mandatory ?? true;
  }

  /**
   * Publishes one job. The `send` span's parent is `spec.trace` when given (a request's context
   * passed on by a gateway, say), else the active context.
   */
  async publish(spec: JobSpec): Promise<PublishedJob> {
    const encoded = encodeJob(spec);
    const { properties } = encoded;
    let { body } = encoded;
    if (this.#userId !== undefined) properties.userId = this.#userId;
    if (this.#encryptor !== undefined) {
      const sealed = await this.#encryptor.encrypt(body, properties);
      body = sealed.body;
      properties.headers = { ...properties.headers, ...sealed.headers };
    }
    if (this.#signer !== undefined) {
      properties.headers = {
        ...properties.headers,
        ...(await this.#signer.sign(body, properties)),
      };
    }
    const routingKey = jobRoutingKey(spec.modelType, spec.scope ?? DEFAULT_SCOPE);
    const { jobsExchange } = topologyFor(spec.modelType, this.#topology);
    try {
      await publishTraced(
        this.#transport,
        { exchange: jobsExchange, routingKey },
        body,
        properties,
        { mandatory: this.#mandatory },
        activeTracer() === undefined ? undefined : { parent: parentOf(spec) },
      );
    } catch (error) {
      if (!(error instanceof UnroutableError)) throw error;
      throw new JobUnroutableError(
        `job ${properties.messageId} refused: no queue is bound for routing key ${routingKey} on ` +
          `exchange ${jobsExchange}; is a worker for model type ${spec.modelType} and scope ` +
          `${spec.scope ?? DEFAULT_SCOPE} running (it declares the queue)?`,
        { cause: error },
      );
    }
    if (this.#audit !== undefined) {
      audit(
        this.#audit,
        {
          event: 'warren.job.published',
          decision: 'accepted',
          action: 'job',
          identity: identityOf({ user: this.#userId }),
          tenant: spec.tenant,
          scope: spec.scope ?? DEFAULT_SCOPE,
          queue: `${jobsExchange}/${routingKey}`,
          messageId: properties.messageId!,
        },
        Date.now(),
      );
    }
    return { messageId: properties.messageId!, routingKey };
  }
}

/** The parent of a job's `send` span: the context `spec.trace` carries on the active one. */
function parentOf(spec: JobSpec): Context {
  const active = context.active();
  if (spec.trace === undefined) return active;
  try {
    const headers = {
      [HEADERS.traceparent]: spec.trace.traceparent,
      [HEADERS.tracestate]: spec.trace.tracestate,
      [HEADERS.baggage]: spec.trace.baggage,
    };
    return extractContext(headers, active);
  } catch (error) {
    telemetryFailed('trace context extraction', error);
    return active;
  }
}
