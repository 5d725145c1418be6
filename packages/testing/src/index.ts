export type {
  AdminArgumentValue,
  ConformanceAdmin,
  ConformanceFixture,
  ConformanceTopologyOptions,
} from './conformance-fixture.ts';
export { FakeClock } from './fake-clock.ts';
export type { FaultProxyTarget } from './fault-proxy.ts';
export { FaultProxy } from './fault-proxy.ts';
export type { Harness } from './harness.ts';
export { createHarness } from './harness.ts';
export { JobAnsweredError, JobDeadLetteredError, JobStillWaitingError } from './harness-errors.ts';
export type { HarnessJob, HarnessOptions } from './harness-options.ts';
export type { HarnessDeadLetter, HarnessResult } from './harness-outcomes.ts';
export type { Recording, RecordOptions } from './recording.ts';
export { record, takeAll } from './recording.ts';
export { describeTransportConformance } from './transport-conformance.ts';
export { sleep, waitFor } from './wait-for.ts';
