import type { QueueTopology, RetryPolicy } from '@warren/core';
import type { ConformanceFixture, ConformanceTopologyOptions } from './conformance-fixture.ts';

/** The delay of the one delay queue the suite's topologies have: short, so the suite is fast. */
export const DELAY_MS = 200;

/** How long the suite waits to be sure that nothing more arrives. */
export const QUIET_MS = 200;

/** Epoch milliseconds: too big for an AMQP int, so it travels as a signed 64-bit long. */
export const CREATED_AT = 1_764_860_000_000;

const ONE_SHORT_DELAY: RetryPolicy = {
  maxAttempts: 2,
  initialDelayMs: DELAY_MS,
  multiplier: 1,
  maxDelayMs: DELAY_MS,
  jitter: 0,
};

/** Hands each test group the fixture of the test that is running. */
export type FixtureAccess = () => ConformanceFixture;

/** The fixture's topology for `modelType`, with one {@link DELAY_MS} delay queue by default. */
export function topologyOf(
  fixture: ConformanceFixture,
  modelType = 'feature-extraction',
  options: ConformanceTopologyOptions = {},
): QueueTopology {
  return fixture.topology(modelType, { retry: ONE_SHORT_DELAY, ...options });
}

/** A JSON body for test message `n`. */
export function job(n: number): Buffer {
  return Buffer.from(JSON.stringify({ n }));
}
