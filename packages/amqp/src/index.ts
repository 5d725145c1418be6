export { AmqpTransport } from './amqp-transport.ts';
export type { AmqpTransportOptions } from './options.ts';
export type { PublishBufferOptions, RecoveryOptions } from './recovery-policy.ts';
export { DEFAULT_PUBLISH_BUFFER, DEFAULT_RECOVERY } from './recovery-policy.ts';
export { redactUrl } from './url.ts';
