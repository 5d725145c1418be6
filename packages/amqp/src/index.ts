export type { AmqpTransportOptions } from './amqp-transport.ts';
export { AmqpTransport } from './amqp-transport.ts';
export type { TransportLogger } from './logger.ts';
export { redactUrl } from './url.ts';
