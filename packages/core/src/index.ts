export type { AuditEntry, AuditSink } from './audit.ts';
export { audit, identityOf } from './audit.ts';
export type { Clearance } from './clearance.ts';
export {
  clearanceProblem,
  DEFAULT_CLEARANCE,
  forbiddenFor,
  narrowClearance,
  SCOPE_PATTERN,
} from './clearance.ts';
export type { Clock, Timer } from './clock.ts';
export { systemClock } from './clock.ts';
export type {
  ConsumerExit,
  ConsumerOptions,
  TransitionEvent,
  TransitionListener,
} from './consumer.ts';
export { Consumer } from './consumer.ts';
export type { ConsumerCounts, ConsumerEvent } from './consumer-machine.ts';
export { consumerMachine } from './consumer-machine.ts';
export type { HandlerTrace, ItemTrace, JobTrace } from './consumer-telemetry.ts';
export type { ClaimResult, DedupeStore, MemoryDedupeStoreOptions } from './dedupe.ts';
export { DEFAULT_DEDUPE_MAX_ENTRIES, MemoryDedupeStore } from './dedupe.ts';
export type { BodyDecryptor, Decryption, EncryptedBody, JobEncryptor } from './encryption.ts';
export { isEncrypted } from './encryption.ts';
export type { JobEnvelope, JobSpec, TraceContext } from './envelope.ts';
export {
  DEFAULT_SCOPE,
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
export type {
  DecryptionRefusal,
  ErrorCode,
  Fate,
  ForbiddenReason,
  IdentityRefusal,
  MalformedReason,
  SignatureRefusal,
} from './errors.ts';
export {
  BrokerUnreachableError,
  ConfigError,
  ConsumerTimeoutError,
  DeadlineExceededError,
  DecryptionRefusedError,
  DedupeUnavailableError,
  describeThrown,
  ERROR_CODES,
  ForbiddenError,
  HandlerError,
  IdentityRefusedError,
  IllegalStateError,
  InferenceError,
  InputTooLongError,
  InvalidResultError,
  isWarrenError,
  JobRejectedError,
  JobUnroutableError,
  MalformedMessageError,
  ModelLoadError,
  PluginError,
  PublishBufferFullError,
  PublishError,
  SchemaViolationError,
  SignatureRefusedError,
  toWarrenError,
  UnroutableError,
  WarrenError,
} from './errors.ts';
export type { FailureInfo } from './failure-headers.ts';
export { deadLetterProperties, reasonFor, retryProperties } from './failure-headers.ts';
export type {
  BatchContext,
  BatchOptions,
  Handler,
  HandlerContext,
  HandlerSpec,
  ResultsPolicy,
  SetupContext,
} from './handler.ts';
export { defineHandler, isHandler } from './handler.ts';
export type {
  ClassificationLabel,
  FeatureExtractionRequest,
  InferenceClient,
  Pooling,
  TextClassificationRequest,
} from './inference.ts';
export type {
  JobObserver,
  JobOutput,
  JobState,
  JobTransition,
} from './job-run.ts';
export { runJob } from './job-run.ts';
export type {
  DeadlinePolicy,
  DedupeOptions,
  JobDeps,
  JobItem,
  JobOutcome,
} from './job-steps.ts';
export type { LogSink } from './log-sink.ts';
export { silentLogSink } from './log-sink.ts';
export type {
  AdaptivePrefetchOptions,
  BatchSample,
  PrefetchDecision,
} from './prefetch-controller.ts';
export { PrefetchController } from './prefetch-controller.ts';
export type { JobPublisherOptions, PublishedJob } from './publisher.ts';
export { JobPublisher } from './publisher.ts';
export type { RelayOptions } from './relay.ts';
export { isRelayed, producerOf } from './relay.ts';
export type { RetryPolicy } from './retry.ts';
export {
  allRetryDelays,
  DEFAULT_RETRY_POLICY,
  retryDelay,
  retryPolicyOverrides,
  retryPolicyProblem,
} from './retry.ts';
export { redactServiceUrl, serviceUrlProblem } from './service-url.ts';
export type { JobSigner, JobVerifier, Verdict } from './signing.ts';
export type {
  ChildHealth,
  ChildSpec,
  ChildState,
  RestartBackoff,
  RestartBudget,
  SupervisedActor,
  SupervisorEvent,
  SupervisorExit,
  SupervisorOptions,
} from './supervisor.ts';
export { DEFAULT_RESTART_BACKOFF, DEFAULT_RESTART_BUDGET, Supervisor } from './supervisor.ts';
export {
  instrumentSupervisor,
  instrumentTransport,
  recordConnectionEvent,
} from './telemetry-metrics.ts';
export type { InstrumentName } from './telemetry-names.ts';
export {
  ATTR as TELEMETRY_ATTRIBUTES,
  INSTRUMENTATION_SCOPE,
  METRICS as TELEMETRY_METRICS,
  SPAN_NAMES,
} from './telemetry-names.ts';
export type { TopologyOptions } from './topology.ts';
export { jobRoutingKey, topologyFor } from './topology.ts';
export { extractContext, injectContext } from './trace-propagation.ts';
export { instrumentInference } from './traced-inference.ts';
export type {
  CancelListener,
  ConnectionEvent,
  ConnectionListener,
  ConsumeOptions,
  DelayQueue,
  Delivery,
  HeaderValue,
  MessageProperties,
  PublishOptions,
  PublishTarget,
  QueueTopology,
  Subscription,
  Transport,
} from './transport.ts';
export { checkPrefetch, definedProperties, MESSAGE_PROPERTY_NAMES } from './transport.ts';
export type { DescribeOptions } from './validation.ts';
export { describeIssues, describeValue } from './validation.ts';
