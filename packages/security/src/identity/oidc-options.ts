import { ConfigError, describeIssues } from '@warren/core';
import type { JSONWebKeySet } from 'jose';
import { z } from 'zod';

/** The JWS algorithms an {@link OidcVerifier} can be told to accept. `none` is not among them. */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'HS256',
  'HS384',
  'HS512',
] as const;

export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/**
 * Asymmetric only: whoever can check a token with these cannot forge one. HS* must be asked for,
 * with a shared secret, since every holder of that secret can mint tokens.
 */
export const DEFAULT_JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA', 'PS256'];
export const DEFAULT_CLOCK_SKEW_MS = 60_000;
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
/** How long after a fetch an unknown `kid` may not fetch the JWKS again. */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000;
/** How long a fetched JWKS is used before it is fetched again. */
export const DEFAULT_JWKS_MAX_AGE_MS = 10 * 60_000;

const MIN_HMAC_BYTES = 32;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** A JWKS URL: https, or plain http to this host only (a sidecar, a test). */
const jwksUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an absolute URL', input: text });
    return;
  }
  if (url.username !== '' || url.password !== '') {
    ctx.addIssue({ code: 'custom', message: 'expected a URL without credentials' });
  } else if (
    url.protocol !== 'https:' &&
    !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))
  ) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected an https URL (plain http only to 127.0.0.1, [::1] or localhost)',
      input: text,
    });
  }
});

const jwk = z.looseObject({ kty: z.string().min(1) });
const secret = z.union([
  z.string().regex(/^[A-Za-z0-9+/_-]+={0,2}$/, { message: 'expected base64' }),
  z.instanceof(Uint8Array),
]);
const milliseconds = (min: number, max: number) => z.number().int().min(min).max(max);

/** What an {@link OidcVerifier} checks tokens against; the JSON form of its options. */
export const oidcOptionsSchema = z
  .object({
    /** The `iss` every token must carry, exactly. */
    issuer: z.string().min(1),
    /** The `aud` a token must carry (one of them, when several are given). */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** Where the issuer publishes its keys, fetched and cached; or give `jwks`. */
    jwksUrl: jwksUrl.optional(),
    /** The issuer's keys, inline (`{"keys": [...]}`); or give `jwksUrl`. */
    jwks: z.object({ keys: z.array(jwk).min(1) }).optional(),
    jwksTimeoutMs: milliseconds(1, 60_000).optional(),
    jwksCooldownMs: milliseconds(0, 3_600_000).optional(),
    jwksMaxAgeMs: milliseconds(1_000, 86_400_000).optional(),
    /** Accepted `alg` values (default {@link DEFAULT_JWT_ALGORITHMS}). */
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).optional(),
    /** The shared secret for HS* algorithms, base64 or bytes: only with an HS* algorithm. */
    hmacSecret: secret.optional(),
    /** How far `exp` and `nbf` may be off the verifier's clock (default 60 s). */
    clockSkewMs: milliseconds(0, 600_000).optional(),
  })
  .strict()
  .superRefine((options, ctx) => {
    if ((options.jwksUrl === undefined) === (options.jwks === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'expected either jwksUrl or jwks', path: ['jwks'] });
    }
    const hmac = (options.algorithms ?? []).filter((alg) => alg.startsWith('HS'));
    if (hmac.length > 0 && options.hmacSecret === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a secret of at least ${MIN_HMAC_BYTES} bytes, since ${hmac.join(', ')} is allowed`,
        path: ['hmacSecret'],
      });
    }
    if (options.hmacSecret !== undefined) {
      if (hmac.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: 'given, but no HS* algorithm is allowed: add one to algorithms or drop it',
          path: ['hmacSecret'],
        });
      } else if (secretBytes(options.hmacSecret).length < MIN_HMAC_BYTES) {
        ctx.addIssue({
          code: 'custom',
          message: `expected at least ${MIN_HMAC_BYTES} bytes`,
          path: ['hmacSecret'],
        });
      }
    }
  });

/** The options of an {@link OidcVerifier}. */
export type OidcVerifierOptions = Omit<z.input<typeof oidcOptionsSchema>, 'jwks'> & {
  /** The issuer's keys, inline (`{"keys": [...]}`, public JWKs); or give `jwksUrl`. */
  jwks?: JSONWebKeySet;
  /** Injected for tests; defaults to `Date.now`. */
  now?: () => number;
};

/** Checks an {@link OidcVerifier}'s options; throws {@link ConfigError} naming the field at fault. */
export function parseOidcOptions(
  value: unknown,
  source: string,
): z.output<typeof oidcOptionsSchema> {
  const parsed = oidcOptionsSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(describeIssues(parsed.error, { root: source, showValues: true }));
  }
  return parsed.data;
}

/** A shared secret as bytes, from base64 (either alphabet) or as given. */
export function secretBytes(secret: string | Uint8Array): Uint8Array {
  if (typeof secret !== 'string') return secret;
  return Buffer.from(secret.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
