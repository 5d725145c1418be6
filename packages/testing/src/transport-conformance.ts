import { afterEach, beforeEach, describe } from 'vitest';
import { describeConsuming } from './conformance-consuming.ts';
import { describeDeadLetters } from './conformance-dead-letters.ts';
import { describeDeclaring } from './conformance-declaring.ts';
import type { ConformanceFixture } from './conformance-fixture.ts';
import { describePublishing } from './conformance-publishing.ts';

/**
 * Registers the transport conformance suite: the behaviour Warren relies on from any
 * `Transport`, checked the same way against each (RabbitMQ through `@warren/amqp`, the embedded
 * broker through `@warren/memory`). `createFixture` runs before each test; when it fails (no
 * broker answers), every test fails rather than being skipped.
 */
export function describeTransportConformance(
  name: string,
  createFixture: () => Promise<ConformanceFixture>,
): void {
  describe(`${name} transport conformance`, () => {
    let current: ConformanceFixture | undefined;
    beforeEach(async () => {
      current = await createFixture();
    });
    afterEach(async () => {
      const finished = current;
      current = undefined;
      await finished?.cleanUp();
    });
    const fixture = (): ConformanceFixture => {
      if (current === undefined) throw new Error('no conformance fixture: it is made per test');
      return current;
    };

    describePublishing(fixture);
    describeConsuming(fixture);
    describeDeadLetters(fixture);
    describeDeclaring(fixture);
  });
}
