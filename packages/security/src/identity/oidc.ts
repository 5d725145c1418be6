import { IdentityRefusedError } from '@warren/core';
import {
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type JWTVerifyOptions,
  type JWTVerifyResult,
  jwtVerify,
} from 'jose';
import type { OidcIdentity } from './identity.ts';
import {
  DEFAULT_CLOCK_SKEW_MS,
  DEFAULT_JWKS_COOLDOWN_MS,
  DEFAULT_JWKS_MAX_AGE_MS,
  DEFAULT_JWKS_TIMEOUT_MS,
  DEFAULT_JWT_ALGORITHMS,
  type OidcVerifierOptions,
  parseOidcOptions,
  secretBytes,
} from './oidc-options.ts';
import { refusalOf } from './oidc-refusal.ts';

type KeySource = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** Tokens beyond this are refused before any parsing; real ones are a few kilobytes. */
const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * Verifies the OIDC tokens (JWTs) of one issuer: the signature against the issuer's JWKS
 * (fetched from `jwksUrl` with a timeout, cached, and fetched again, at most once per cooldown,
 * when a token names a key id it lacks: that is how a rotated key is picked up), the algorithm
 * against an allowed list (asymmetric by default), then the issuer, the audience, `exp` and `nbf`
 * with a clock skew. Each failure is an {@link IdentityRefusedError} with its own reason; no
 * message ever holds the token.
 */
export class OidcVerifier {
  /** The `iss` this verifier accepts. */
  readonly issuer: string;
  readonly #jwks: KeySource;
  readonly #jwksName: string;
  readonly #hmacSecret: Uint8Array | undefined;
  readonly #options: JWTVerifyOptions;
  readonly #skewMs: number;
  readonly #now: () => number;

  /** Throws {@link ConfigError} naming the option that is wrong. */
  constructor(options: OidcVerifierOptions, source = 'oidc') {
    const { now, ...rest } = options;
    const config = parseOidcOptions(rest, source);

    this.issuer = config.issuer;
    this.#now = now ?? Date.now;
    this.#skewMs = config.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
    this.#hmacSecret = config.hmacSecret === undefined ? undefined : secretBytes(config.hmacSecret);
    this.#options = {
      issuer: config.issuer,
      audience: config.audience,
      algorithms: [...(config.algorithms ?? DEFAULT_JWT_ALGORITHMS)],
      clockTolerance: this.#skewMs / 1000,
      requiredClaims: ['exp', 'sub'],
    };
    if (config.jwksUrl !== undefined) {
      this.#jwksName = `the JWKS at ${config.jwksUrl}`;
      this.#jwks = createRemoteJWKSet(new URL(config.jwksUrl), {
        timeoutDuration: config.jwksTimeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS,
        cooldownDuration: config.jwksCooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS,
        cacheMaxAge: config.jwksMaxAgeMs ?? DEFAULT_JWKS_MAX_AGE_MS,
      });
    } else {
      // The schema has checked its shape; a key jose cannot import is found at first use.
      this.#jwksName = 'the inline JWKS';
      this.#jwks = createLocalJWKSet({ keys: config.jwks?.keys ?? [] });
    }
  }

  /**
   * The identity a token proves. `token` is the compact JWT, without any `Bearer ` prefix.
   * Refuses `malformed`, `bad-signature` (also for an algorithm not allowed, `none` included),
   * `unknown-key`, `jwks-unavailable`, `wrong-issuer`, `wrong-audience`, `expired` and
   * `not-yet-valid`; the signature is checked before any claim.
   */
  async verify(token: string): Promise<OidcIdentity> {
    if (typeof token !== 'string' || token.length === 0) {
      throw new IdentityRefusedError('malformed', 'OIDC token: expected a JWT, found none');
    }
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new IdentityRefusedError(
        'malformed',
        `OIDC token: expected at most ${MAX_TOKEN_LENGTH} characters, found ${token.length}`,
      );
    }

    const now = this.#now();
    let result: JWTVerifyResult;
    try {
      result = await this.#verifyWithKeys(token, { ...this.#options, currentDate: new Date(now) });
    } catch (error) {
      throw refusalOf(error, token, {
        issuer: this.issuer,
        audience: this.#options.audience ?? [],
        algorithms: this.#options.algorithms ?? [],
        jwksName: this.#jwksName,
        now,
        skewMs: this.#skewMs,
      });
    }

    const { payload } = result;
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new IdentityRefusedError('malformed', 'OIDC token: its sub claim is not a string');
    }
    return {
      kind: 'oidc',
      subject: payload.sub,
      issuer: this.issuer,
      claims: Object.freeze({ ...payload }),
    };
  }

  /**
   * A token without `kid`, when several keys of its algorithm are in the set, is tried against
   * each: the one that verifies it is the signer's.
   */
  async #verifyWithKeys(token: string, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
    try {
      return await jwtVerify(token, this.#key, options);
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      for await (const key of error) {
        try {
          return await jwtVerify(token, key, options);
        } catch (attempt) {
          if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  /**
   * The key for a token's header. jose has already refused an algorithm outside the allowed list,
   * so an HS* one here was asked for, with its secret. A JWKS that cannot be fetched or read is
   * told apart from one that lacks the key.
   */
  readonly #key = async (
    header: JWSHeaderParameters,
    token: FlattenedJWSInput,
  ): Promise<CryptoKey | Uint8Array> => {
    if (header.alg?.startsWith('HS') && this.#hmacSecret !== undefined) return this.#hmacSecret;
    try {
      return await this.#jwks(header, token);
    } catch (error) {
      if (
        error instanceof errors.JWKSNoMatchingKey ||
        error instanceof errors.JWKSMultipleMatchingKeys
      ) {
        throw error;
      }
      throw new IdentityRefusedError(
        'jwks-unavailable',
        `${this.#jwksName} could not be used: ${causeChain(error)}`,
        { cause: error },
      );
    }
  };
}

/** An error's message with its causes' (fetch puts the useful part, ECONNREFUSED, in `cause`). */
function causeChain(error: unknown): string {
  const messages: string[] = [];
  let current: unknown = error;
  while (current instanceof Error && messages.length < 3) {
    messages.push(current.message || current.name);
    current = current.cause;
  }
  return messages.length === 0 ? String(error) : messages.join(': ');
}
