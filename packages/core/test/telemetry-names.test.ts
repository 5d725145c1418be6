import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ATTR, JOB_OUTCOMES, METRICS } from '../src/telemetry-names.ts';

const docs = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf-8');

describe('telemetry names', () => {
  it.each(Object.values(METRICS).map((metric) => metric.name))(
    'documents metric %s in docs/observability.md',
    (name) => {
      expect(docs).toContain(`\`${name}\``);
    },
  );

  it.each(Object.values(ATTR))('documents attribute %s in docs/observability.md', (name) => {
    expect(docs).toContain(`\`${name}\``);
  });

  it.each(JOB_OUTCOMES)('documents outcome %s in docs/observability.md', (outcome) => {
    expect(docs).toContain(`\`${outcome}\``);
  });
});
