export type {
  AdminArgumentValue,
  ConformanceAdmin,
  ConformanceFixture,
  ConformanceTopologyOptions,
} from './conformance-fixture.ts';
export { FakeClock } from './fake-clock.ts';
export type { Recording, RecordOptions } from './recording.ts';
export { record, takeAll } from './recording.ts';
export { describeTransportConformance } from './transport-conformance.ts';
export { sleep, waitFor } from './wait-for.ts';
