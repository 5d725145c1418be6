export type { AmqpTransportOptions } from './amqp-transport.ts';
export { AmqpTransport } from './amqp-transport.ts';
export { redactUrl } from './url.ts';
