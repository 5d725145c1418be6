import { ConfigError } from '@warren/core';
import { describe, expect, it } from 'vitest';
import { IamTrust, parseIamArn } from '../src/index.ts';
import { refused } from './fixtures/identity/refusals.ts';

const ACCOUNT = '123456789012';

describe('parseIamArn', () => {
  it('reads a role with a path', () => {
    expect(parseIamArn(`arn:aws:iam::${ACCOUNT}:role/ml/batch/InferenceProducer`)).toEqual({
      kind: 'aws-iam',
      arn: `arn:aws:iam::${ACCOUNT}:role/ml/batch/InferenceProducer`,
      partition: 'aws',
      account: ACCOUNT,
      principalType: 'role',
      name: 'InferenceProducer',
      path: '/ml/batch/',
    });
  });

  it('reads a role without a path, in another partition', () => {
    expect(parseIamArn(`arn:aws-us-gov:iam::${ACCOUNT}:role/Producer`)).toMatchObject({
      partition: 'aws-us-gov',
      principalType: 'role',
      name: 'Producer',
      path: '/',
    });
  });

  it('reads an assumed role with its session', () => {
    const identity = parseIamArn(`arn:aws:sts::${ACCOUNT}:assumed-role/InferenceProducer/i-0abc`);
    expect(identity).toEqual({
      kind: 'aws-iam',
      arn: `arn:aws:sts::${ACCOUNT}:assumed-role/InferenceProducer/i-0abc`,
      partition: 'aws',
      account: ACCOUNT,
      principalType: 'assumed-role',
      name: 'InferenceProducer',
      session: 'i-0abc',
    });
  });

  it('reads a user', () => {
    expect(parseIamArn(`arn:aws:iam::${ACCOUNT}:user/ops/alice@example.com`)).toMatchObject({
      principalType: 'user',
      name: 'alice@example.com',
      path: '/ops/',
    });
  });

  it.each([
    ['', 'expected arn:'],
    ['arn:aws:iam::12345:role/Short', 'expected arn:'],
    [`arn:aws:iam:us-east-1:${ACCOUNT}:role/Regional`, 'expected arn:'],
    [`arn:aws:s3:::bucket`, 'expected arn:'],
    [`arn:aws:iam::${ACCOUNT}:group/Admins`, 'expected a role, user (iam) or assumed-role'],
    [`arn:aws:iam::${ACCOUNT}:root`, 'expected a role, user (iam) or assumed-role'],
    [`arn:aws:sts::${ACCOUNT}:role/Wrong`, 'expected a role, user (iam) or assumed-role'],
    [`arn:aws:sts::${ACCOUNT}:assumed-role/OnlyRole`, 'expected assumed-role/<role>/<session>'],
    [`arn:aws:sts::${ACCOUNT}:assumed-role/R/s/extra`, 'expected assumed-role/<role>/<session>'],
    [`arn:aws:iam::${ACCOUNT}:role/`, 'expected role/<path/>name'],
    [`arn:aws:iam::${ACCOUNT}:role/has space`, 'expected role/<path/>name'],
    [`arn:aws:iam::${ACCOUNT}:role/a//b`, 'expected role/<path/>name'],
    [`arn:aws:iam::${ACCOUNT}:role/${'x'.repeat(65)}`, 'expected role/<path/>name'],
    ['x'.repeat(5000), 'found 5000 characters'],
  ])('refuses %j as malformed', async (arn, message) => {
    const error = await refused(() => parseIamArn(arn), 'malformed');
    expect(error.message).toContain(message);
  });

  it('refuses a value that is not a string as malformed', async () => {
    await refused(() => parseIamArn(42 as unknown as string), 'malformed');
  });
});

describe('IamTrust', () => {
  const trust = new IamTrust({ trustedAccounts: [ACCOUNT, '210987654321'] });

  it('accepts principals of a trusted account', () => {
    expect(trust.identify(`arn:aws:iam::210987654321:role/Producer`).account).toBe('210987654321');
    expect(trust.identify(`arn:aws:sts::${ACCOUNT}:assumed-role/Producer/s1`).session).toBe('s1');
  });

  it('refuses a principal of another account as untrusted', async () => {
    const error = await refused(
      () => trust.identify('arn:aws:iam::999999999999:role/Producer'),
      'untrusted',
    );
    expect(error.message).toContain('account 999999999999 is not a trusted account');
  });

  it('refuses garbage as malformed before it looks at the account', async () => {
    await refused(() => trust.identify('arn:aws:iam::999999999999:nonsense'), 'malformed');
  });

  it.each([
    [{ trustedAccounts: [] }, 'iam.trustedAccounts: expected at least 1 items'],
    [{ trustedAccounts: ['12345'] }, 'iam.trustedAccounts[0]: expected a 12-digit account id'],
    [{ accounts: [ACCOUNT] }, 'iam.trustedAccounts: expected array'],
  ])('refuses options %j with a message naming the field', (options, message) => {
    expect(() => new IamTrust(options as never)).toThrow(ConfigError);
    expect(() => new IamTrust(options as never)).toThrow(message);
  });
});
