export { AmqpTransport } from './amqp-transport.ts';
export type { Credentials, CredentialsProvider, RotationRetryOptions } from './credentials.ts';
export { DEFAULT_ROTATION_RETRY } from './credentials.ts';
export type { AmqpTransportOptions } from './options.ts';
export type { PublishBufferOptions, RecoveryOptions } from './recovery-policy.ts';
export { DEFAULT_PUBLISH_BUFFER, DEFAULT_RECOVERY } from './recovery-policy.ts';
export { redactUrl, urlHasPassword } from './url.ts';
