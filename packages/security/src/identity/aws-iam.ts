import { ConfigError, describeIssues, IdentityRefusedError } from '@warren/core';
import { z } from 'zod';
import type { IamIdentity } from './identity.ts';
import { quote } from './identity.ts';

const ACCOUNT = /^\d{12}$/;
/** `arn:<partition>:<iam|sts>::<account>:<resource>`; IAM and STS ARNs have no region. */
const ARN = /^arn:(aws(?:-[a-z]+)*):(iam|sts)::(\d{12}):(.+)$/;
/** Role, user and session names: IAM's own character set. */
const NAME = /^[\w+=,.@-]{1,64}$/;
const SESSION = /^[\w+=,.@-]{2,64}$/;
/** An IAM path's segments: printable ASCII but `/`. */
const PATH_SEGMENT = /^[\x21-\x2e\x30-\x7e]+$/;
const MAX_ARN_LENGTH = 2048;

/**
 * Reads a role, assumed-role or user ARN:
 * `arn:aws:iam::<account>:role/<path/>Name`, `arn:aws:sts::<account>:assumed-role/<Role>/<session>`
 * or `arn:aws:iam::<account>:user/<path/>Name`. Anything else is refused as `malformed`. Parsing
 * trusts nothing: use {@link IamTrust} to accept a principal.
 */
export function parseIamArn(arn: string): IamIdentity {
  if (typeof arn !== 'string' || arn.length > MAX_ARN_LENGTH) {
    throw malformed(`expected an IAM ARN string, found ${describe(arn)}`);
  }
  const parts = ARN.exec(arn);
  if (parts === null) {
    throw malformed(
      `expected arn:<partition>:iam|sts::<12-digit account>:..., found ${quote(arn)}`,
    );
  }
  const [, partition = '', service = '', account = '', resource = ''] = parts;
  const [type, ...rest] = resource.split('/');
  const base = { kind: 'aws-iam', arn, partition, account } as const;

  if (service === 'sts' && type === 'assumed-role') {
    const [name = '', session = '', ...extra] = rest;
    if (extra.length > 0 || !NAME.test(name) || !SESSION.test(session)) {
      throw malformed(`expected assumed-role/<role>/<session>, found ${quote(resource)}`);
    }
    return { ...base, principalType: 'assumed-role', name, session };
  }
  if (service === 'iam' && (type === 'role' || type === 'user')) {
    const name = rest.pop() ?? '';
    if (!NAME.test(name) || !rest.every((segment) => PATH_SEGMENT.test(segment))) {
      throw malformed(`expected ${type}/<path/>name, found ${quote(resource)}`);
    }
    const path = rest.length === 0 ? '/' : `/${rest.join('/')}/`;
    return { ...base, principalType: type, name, path };
  }
  throw malformed(
    `expected a role, user (iam) or assumed-role (sts) principal, found ${quote(`${service}:${resource}`)}`,
  );
}

const iamTrustSchema = z
  .object({
    /** 12-digit AWS account ids; at least one. */
    trustedAccounts: z
      .array(z.string().regex(ACCOUNT, { message: 'expected a 12-digit account id' }))
      .min(1),
  })
  .strict();

/** Which accounts' principals an {@link IamTrust} accepts; also its JSON form. */
export type IamTrustOptions = z.input<typeof iamTrustSchema>;

/**
 * Accepts IAM principals from trusted accounts. The ARN must come from a front the producer
 * trusts to have authenticated the caller (API Gateway with IAM authorization, an ALB, a signed
 * header from a sidecar): an ARN is a name, not a credential, and anyone can type one. Never take
 * it from a header the caller can set.
 */
export class IamTrust {
  readonly #accounts: ReadonlySet<string>;

  /** Throws {@link ConfigError} naming the field at fault (`iam.trustedAccounts[1]`). */
  constructor(options: IamTrustOptions, source = 'iam') {
    this.#accounts = new Set(parseIamTrustOptions(options, source).trustedAccounts);
  }

  /** The principal `arn` names; refused `malformed` or, outside the trusted accounts, `untrusted`. */
  identify(arn: string): IamIdentity {
    const identity = parseIamArn(arn);
    if (!this.#accounts.has(identity.account)) {
      throw new IdentityRefusedError(
        'untrusted',
        `IAM principal ${quote(arn)}: account ${identity.account} is not a trusted account`,
      );
    }
    return identity;
  }
}

/** Checks an {@link IamTrust}'s options; throws {@link ConfigError} naming the field at fault. */
export function parseIamTrustOptions(value: unknown, source: string): IamTrustOptions {
  const parsed = iamTrustSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(describeIssues(parsed.error, { root: source, showValues: true }));
  }
  return parsed.data;
}

function malformed(message: string): IdentityRefusedError {
  return new IdentityRefusedError('malformed', `IAM principal: ${message}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `${value.length} characters`;
  return value === null ? 'null' : `a ${typeof value}`;
}
