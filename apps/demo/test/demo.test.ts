import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AMQP_URL, BrokerProbe, uniquePrefix } from '../../worker/test/support.ts';
import { runDemo } from '../src/run-demo.ts';

const SHARED = resolve(import.meta.dirname, '../../../../shared');

describe('the main job', () => {
  const prefix = uniquePrefix();

  afterAll(async () => {
    const probe = await BrokerProbe.open();
    await probe.deleteTopology(prefix, ['sentence-embedding']);
    await probe.close();
  });

  it('embeds all of STS-B through RabbitMQ with one result per job and the reference correlations', async () => {
    const report = await runDemo({
      dataFile: resolve(SHARED, 'data/sts-b/sts-test.csv'),
      model: resolve(SHARED, 'models/use-lite-en'),
      broker: { kind: 'rabbitmq', url: AMQP_URL },
      prefix,
    });

    expect(report.pairs).toBe(1379);
    expect(report.jobs).toBe(2758);
    expect(report.results).toBe(report.jobs);
    expect(report.duplicates).toBe(0);
    expect(report.dead_lettered).toBe(0);
    expect(report.pearson.toFixed(4)).toBe('0.7401');
    expect(report.spearman.toFixed(4)).toBe('0.7250');
    expect(report.broker).toMatch(/^amqps?:\/\//);
    expect(report.broker).not.toContain('@');
  }, 300_000);

  it('gives the same results on the embedded broker as through RabbitMQ', async () => {
    const options = {
      dataFile: resolve(SHARED, 'data/sts-b/sts-test.csv'),
      model: resolve(SHARED, 'models/use-lite-en'),
      limit: 200,
      prefix,
    };
    const embedded = await runDemo({ ...options, broker: { kind: 'embedded' } });
    const rabbit = await runDemo({ ...options, broker: { kind: 'rabbitmq', url: AMQP_URL } });

    expect(embedded.broker).toBe('embedded');
    expect(embedded.jobs).toBe(400);
    expect(embedded.results).toBe(400);
    expect(embedded.duplicates).toBe(0);
    expect(embedded.pearson).toBe(rabbit.pearson);
    expect(embedded.spearman).toBe(rabbit.spearman);
  }, 120_000);
});
