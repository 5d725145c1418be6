/**
 * Who is asking a producer to publish a job, once proven. The rules ({@link IdentityRules}) turn
 * it into the job's tenant, scope, priority and routing key.
 */
export type Identity = OidcIdentity | IamIdentity;

/** The holder of an OIDC token (a JWT) whose signature, issuer, audience and times were checked. */
export interface OidcIdentity {
  readonly kind: 'oidc';
  /** The token's `sub`. */
  readonly subject: string;
  /** The token's `iss`, equal to the issuer the verifier was configured with. */
  readonly issuer: string;
  /** Every claim of the token, as signed by the issuer. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** What kind of IAM principal an ARN names. */
export type IamPrincipalType = 'role' | 'assumed-role' | 'user';

/**
 * An AWS IAM principal, as a front the producer trusts (API Gateway with IAM auth, an ALB, a
 * sidecar) passed it on. The ARN alone proves nothing: see {@link IamTrust}.
 */
export interface IamIdentity {
  readonly kind: 'aws-iam';
  readonly arn: string;
  /** `aws`, `aws-cn`, `aws-us-gov`, ... */
  readonly partition: string;
  /** The 12-digit account id. */
  readonly account: string;
  readonly principalType: IamPrincipalType;
  /** The role's name (for a role or an assumed role) or the user's name, without its path. */
  readonly name: string;
  /** The IAM path of a role or user (`/` when it has none); absent for an assumed role. */
  readonly path?: string;
  /** The session name of an assumed role. */
  readonly session?: string;
}

/**
 * A value for an error message: quoted, and cut short, since it may come from a caller. Never
 * given a token.
 */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = `a ${typeof value}`;
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
