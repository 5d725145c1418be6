/** The AMQP reply a broker closes a channel with when it refuses an operation. */
export type RefusalKind =
  | 'ACCESS_REFUSED'
  | 'NOT_FOUND'
  | 'RESOURCE_LOCKED'
  | 'PRECONDITION_FAILED';

const REPLY_CODES: Record<RefusalKind, number> = {
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
};

/**
 * The embedded broker refused an operation, where RabbitMQ would close the channel with the same
 * reply. The message reads like RabbitMQ's reply text (`NOT_FOUND - no queue 'q' in vhost '/'`),
 * so errors read the same whichever broker a transport talks to.
 */
export class BrokerRefusalError extends Error {
  /** AMQP's numeric reply code, as amqplib exposes it in `code`. */
  readonly code: number;

  constructor(
    readonly kind: RefusalKind,
    detail: string,
  ) {
    super(`${kind} - ${detail}`);
    this.name = 'BrokerRefusalError';
    this.code = REPLY_CODES[kind];
  }
}
