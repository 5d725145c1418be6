import { ConfigError, describeIssues, IdentityRefusedError, type JobSpec } from '@warren/core';
import { decodeJwt } from 'jose';
import { z } from 'zod';
import { IamTrust, parseIamTrustOptions } from './aws-iam.ts';
import { type IamIdentity, type Identity, type OidcIdentity, quote } from './identity.ts';
import { OidcVerifier } from './oidc.ts';
import { parseOidcOptions } from './oidc-options.ts';
import { type IdentityRoute, IdentityRules } from './rules.ts';

/** A router's parts: the issuers and accounts it trusts, and the rules. */
export interface IdentityRouterOptions {
  /** One verifier per OIDC issuer whose tokens are accepted; absent, no bearer token is. */
  oidc?: OidcVerifier | readonly OidcVerifier[];
  /** The trusted accounts of IAM principals; absent, no ARN is accepted. */
  iam?: IamTrust;
  rules: IdentityRules;
}

/** A job's fields that the identity does not decide. */
export type JobFields = Omit<JobSpec, 'modelType' | 'tenant' | 'scope' | 'priority'>;

/** The top of an identity config; each part is checked by the class it configures. */
const configShape = z
  .object({
    oidc: z.union([z.looseObject({}), z.array(z.looseObject({})).min(1)]).optional(),
    iam: z.looseObject({}).optional(),
    rules: z.unknown(),
  })
  .strict();

/**
 * The producer side of identity: proves who is asking (an OIDC bearer token, or an IAM principal
 * passed on by a trusted front), then, by the rules, which tenant, scope and priority their job
 * gets and so where it is routed. A gateway in front of `JobPublisher` calls, per request:
 *
 * ```ts
 * const identity = await router.fromBearer(request.headers.authorization);
 * await publisher.publish(router.jobSpec(identity, 'feature-extraction', { input }));
 * ```
 *
 * Every refusal is an `IdentityRefusedError`; docs/identity.md says what to answer for each.
 */
export class IdentityRouter {
  readonly #verifiers: ReadonlyMap<string, OidcVerifier>;
  readonly #iam: IamTrust | undefined;
  readonly #rules: IdentityRules;

  constructor(options: IdentityRouterOptions) {
    const verifiers = new Map<string, OidcVerifier>();
    const oidc = options.oidc;
    for (const verifier of oidc === undefined ? [] : 'issuer' in oidc ? [oidc] : oidc) {
      if (verifiers.has(verifier.issuer)) {
        throw new ConfigError(`oidc: issuer ${quote(verifier.issuer)} is given twice`);
      }
      verifiers.set(verifier.issuer, verifier);
    }
    this.#verifiers = verifiers;
    this.#iam = options.iam;
    this.#rules = options.rules;
  }

  /**
   * A router from a config file's value (parsed JSON or YAML):
   * `{ "oidc": {...} | [{...}], "iam": { "trustedAccounts": [...] }, "rules": [...] }`, each part
   * as its class takes it. Throws {@link ConfigError} naming the field at fault.
   */
  static fromConfig(
    value: unknown,
    source = 'identity',
    options: { now?: () => number } = {},
  ): IdentityRouter {
    const parsed = configShape.safeParse(value, { reportInput: true });
    if (!parsed.success) {
      throw new ConfigError(describeIssues(parsed.error, { root: source, showValues: true }));
    }
    const { oidc, iam, rules } = parsed.data;
    const issuers = oidc === undefined ? [] : Array.isArray(oidc) ? oidc : [oidc];
    return new IdentityRouter({
      oidc: issuers.map((issuer, index) => {
        const at = Array.isArray(oidc) ? `${source}.oidc[${index}]` : `${source}.oidc`;
        return new OidcVerifier({ ...parseOidcOptions(issuer, at), ...options }, at);
      }),
      ...(iam === undefined
        ? {}
        : { iam: new IamTrust(parseIamTrustOptions(iam, `${source}.iam`), `${source}.iam`) }),
      rules: IdentityRules.parse(rules, `${source}.rules`),
    });
  }

  /**
   * The identity an `Authorization` header value (`Bearer <jwt>`) or a bare JWT proves, checked
   * by the verifier of the token's issuer. Refused `malformed` when there is no bearer token.
   */
  async fromBearer(authorization: string | undefined): Promise<OidcIdentity> {
    if (this.#verifiers.size === 0) {
      throw new ConfigError('oidc: no issuer is configured, so no bearer token can be checked');
    }
    const token = bearerToken(authorization);
    return this.#verifierFor(token).verify(token);
  }

  /**
   * The IAM principal an ARN names, which must come from a front that authenticated the caller
   * (see {@link IamTrust}). Refused `malformed`, or `untrusted` outside the trusted accounts.
   */
  fromIamArn(arn: string): IamIdentity {
    if (this.#iam === undefined) {
      throw new ConfigError('iam: no trusted accounts are configured, so no ARN can be accepted');
    }
    return this.#iam.identify(arn);
  }

  /** Where a job of `modelType` from `identity` goes, by the rules; refused `no-rule`. */
  route(identity: Identity, modelType: string): IdentityRoute {
    return this.#rules.route(identity, modelType);
  }

  /**
   * A `JobSpec` for `JobPublisher.publish`: `job`'s fields, with the model type, and the tenant,
   * scope and priority the rules give `identity`, which win over any in `job`.
   */
  jobSpec(identity: Identity, modelType: string, job: JobFields): JobSpec {
    const route = this.route(identity, modelType);
    return {
      ...job,
      modelType,
      tenant: route.tenant,
      scope: route.scope,
      ...(route.priority === undefined ? {} : { priority: route.priority }),
    };
  }

  /**
   * With one issuer, its verifier checks the `iss` itself. With several, the unverified `iss`
   * only picks which verifier then checks everything, that same claim included.
   */
  #verifierFor(token: string): OidcVerifier {
    const [only, ...others] = this.#verifiers.values();
    if (only !== undefined && others.length === 0) return only;

    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw new IdentityRefusedError('malformed', 'OIDC token: not a well-formed JWT');
    }
    const verifier = typeof issuer === 'string' ? this.#verifiers.get(issuer) : undefined;
    if (verifier === undefined) {
      const expected = [...this.#verifiers.keys()].map(quote).join(', ');
      throw new IdentityRefusedError(
        'wrong-issuer',
        `OIDC token: expected issuer one of ${expected}, found ${quote(issuer ?? 'none')}`,
      );
    }
    return verifier;
  }
}

/** The JWT in an `Authorization` value. Only the scheme of another credential is ever quoted. */
function bearerToken(authorization: string | undefined): string {
  const value = typeof authorization === 'string' ? authorization.trim() : '';
  if (value === '') {
    throw new IdentityRefusedError('malformed', 'OIDC token: expected a bearer token, found none');
  }
  const [scheme = '', credential, ...rest] = value.split(/[ \t]+/);
  if (credential === undefined) return scheme;
  if (scheme.toLowerCase() !== 'bearer' || rest.length > 0) {
    throw new IdentityRefusedError(
      'malformed',
      `OIDC token: expected "Bearer <token>", found a credential of scheme ${quote(scheme.slice(0, 20))}`,
    );
  }
  return credential;
}
