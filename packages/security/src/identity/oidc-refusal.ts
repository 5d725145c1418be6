import { describeThrown, type IdentityRefusal, IdentityRefusedError } from '@warren/core';
import { decodeProtectedHeader, errors, type JWTPayload } from 'jose';
import { quote } from './identity.ts';

/** What a refusal's message may tell, besides the error. */
export interface RefusalContext {
  issuer: string;
  audience: string | readonly string[];
  algorithms: readonly string[];
  jwksName: string;
  now: number;
  skewMs: number;
}

/**
 * Turns what jose threw while verifying `token` into an {@link IdentityRefusedError} with its
 * reason. Messages name the claim or header at fault and what was expected, never the token. A
 * claim's failure is not kept as the cause: jose's error holds every claim of the token.
 */
export function refusalOf(
  error: unknown,
  token: string,
  context: RefusalContext,
): IdentityRefusedError {
  if (error instanceof IdentityRefusedError) return error;
  if (error instanceof errors.JWTExpired || error instanceof errors.JWTClaimValidationFailed) {
    return claimRefusal(error, context);
  }
  const header = headerOf(token);
  if (error instanceof errors.JWKSNoMatchingKey) {
    const kid = header.kid === undefined ? 'no kid' : `key id ${quote(header.kid)}`;
    return refuse(
      'unknown-key',
      `${kid} with alg ${quote(header.alg)} matches no key in ${context.jwksName}`,
    );
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return refuse(
      'bad-signature',
      `alg ${quote(header.alg)} is not allowed; expected one of ${context.algorithms.join(', ')}`,
    );
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    const kid = header.kid === undefined ? '' : ` (key id ${quote(header.kid)})`;
    return refuse('bad-signature', `the signature does not verify${kid}`);
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    // Not kept as the cause: jose's own cause can quote the decoded header or payload.
    return refuse('malformed', `not a well-formed JWT: ${error.message}`);
  }
  // What is left is the key's fault: an RSA key under 2048 bits, a key of the wrong type.
  const message = describeThrown(error);
  return refuse('bad-signature', `the key cannot verify it: ${message}`, error);
}

function claimRefusal(
  error: InstanceType<typeof errors.JWTClaimValidationFailed | typeof errors.JWTExpired>,
  context: RefusalContext,
): IdentityRefusedError {
  const payload: JWTPayload = error.payload;
  const missing = error.reason === 'missing';
  switch (error.claim) {
    case 'iss':
      return refuse(
        'wrong-issuer',
        `expected issuer ${quote(context.issuer)}, found ${missing ? 'none' : quote(payload.iss)}`,
      );
    case 'aud':
      return refuse(
        'wrong-audience',
        `expected audience ${list(context.audience)}, found ${missing ? 'none' : quote(payload.aud)}`,
      );
    case 'exp':
      if (error.reason === 'check_failed') {
        return refuse('expired', `expired at ${iso(payload.exp)}; ${clock(context)}`);
      }
      break;
    case 'nbf':
      if (error.reason === 'check_failed') {
        return refuse('not-yet-valid', `not valid before ${iso(payload.nbf)}; ${clock(context)}`);
      }
      break;
  }
  const problem = missing ? 'is missing' : 'is not valid';
  return refuse('malformed', `its ${quote(error.claim)} claim ${problem}`);
}

function headerOf(token: string): { alg?: unknown; kid?: unknown } {
  try {
    return decodeProtectedHeader(token);
  } catch {
    return {};
  }
}

function refuse(reason: IdentityRefusal, message: string, cause?: unknown): IdentityRefusedError {
  const options = cause === undefined ? undefined : { cause };
  return new IdentityRefusedError(reason, `OIDC token: ${message}`, options);
}

function clock(context: RefusalContext): string {
  return `now ${iso(context.now / 1000)}, clock skew allowed ${context.skewMs / 1000} s`;
}

function iso(seconds: unknown): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return quote(seconds);
  return new Date(seconds * 1000).toISOString();
}

function list(values: string | readonly string[]): string {
  return typeof values === 'string' ? quote(values) : values.map(quote).join(' or ');
}
