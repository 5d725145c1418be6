export type {
  ConsumerExit,
  ConsumerOptions,
  TransitionEvent,
  TransitionListener,
} from './consumer.ts';
export { Consumer } from './consumer.ts';
export type { ConsumerCounts, ConsumerEvent } from './consumer-machine.ts';
export { consumerMachine } from './consumer-machine.ts';
export type { DeadLetterInfo, JobEnvelope, JobSpec, TraceContext } from './envelope.ts';
export {
  DEFAULT_SCOPE,
  deadLetterProperties,
  decodeEnvelope,
  decodeJsonBody,
  encodeJob,
  envelopeToProperties,
  HEADERS,
  JOB_TYPE,
  JSON_CONTENT_TYPE,
  RESULT_TYPE,
  resultProperties,
} from './envelope.ts';
export type { ErrorCode, Fate, MalformedReason } from './errors.ts';
export {
  BrokerUnreachableError,
  ConfigError,
  DeadlineExceededError,
  ERROR_CODES,
  HandlerError,
  IllegalStateError,
  InferenceError,
  InputTooLongError,
  MalformedMessageError,
  ModelLoadError,
  PluginError,
  PublishError,
  SchemaViolationError,
  toWarrenError,
  WarrenError,
} from './errors.ts';
export type { Handler, HandlerContext, HandlerSpec, SetupContext } from './handler.ts';
export { defineHandler, isHandler } from './handler.ts';
export type {
  ClassificationLabel,
  FeatureExtractionRequest,
  InferenceClient,
  Pooling,
  TextClassificationRequest,
} from './inference.ts';
export type { JobMachineInput, JobMachineOutput } from './job-machine.ts';
export { jobMachine } from './job-machine.ts';
export type { JobDeps, JobItem, JobOutcome } from './job-steps.ts';
export type { PublishedJob } from './publisher.ts';
export { JobPublisher } from './publisher.ts';
export type { TopologyOptions } from './topology.ts';
export { jobRoutingKey, topologyFor } from './topology.ts';
export type {
  CancelListener,
  ConsumeOptions,
  Delivery,
  HeaderValue,
  MessageProperties,
  PublishTarget,
  QueueTopology,
  Subscription,
  Transport,
} from './transport.ts';
export type { DescribeOptions } from './validation.ts';
export { describeIssues } from './validation.ts';
