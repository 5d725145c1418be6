export type { AuditEntry } from './audit.ts';
export { JsonLinesAuditLog } from './audit.ts';
export type { Algorithm, SignedFields } from './canonical.ts';
export {
  ALGORITHMS,
  CANONICAL_TAG,
  CanonicalFormError,
  canonicalBytes,
  signedFields,
} from './canonical.ts';
export type { IamTrustOptions } from './identity/aws-iam.ts';
export { IamTrust, parseIamArn } from './identity/aws-iam.ts';
export type {
  IamIdentity,
  IamPrincipalType,
  Identity,
  OidcIdentity,
} from './identity/identity.ts';
export { OidcVerifier } from './identity/oidc.ts';
export type { JwtAlgorithm, OidcVerifierOptions } from './identity/oidc-options.ts';
export {
  DEFAULT_CLOCK_SKEW_MS,
  DEFAULT_JWKS_COOLDOWN_MS,
  DEFAULT_JWKS_MAX_AGE_MS,
  DEFAULT_JWKS_TIMEOUT_MS,
  DEFAULT_JWT_ALGORITHMS,
  JWT_ALGORITHMS,
} from './identity/oidc-options.ts';
export type { IdentityRouterOptions, JobFields } from './identity/router.ts';
export { IdentityRouter } from './identity/router.ts';
export type { IdentityRoute } from './identity/rules.ts';
export { IdentityRules } from './identity/rules.ts';
export type { IamRule, IdentityRule, OidcRule, ValuePattern } from './identity/rules-schema.ts';
export { identityRulesSchema } from './identity/rules-schema.ts';
export type { KeyFile, SigningKey } from './keys.ts';
export { ed25519Key, hmacKey, KeySet } from './keys.ts';
export type {
  PermissionsDeclaration,
  PermissionsDeclarationInput,
} from './permissions/declaration.ts';
export {
  parsePermissionsDeclaration,
  permissionsDeclarationSchema,
} from './permissions/declaration.ts';
export type { DefinitionsOptions, RabbitDefinitions } from './permissions/definitions.ts';
export { toDefinitions } from './permissions/definitions.ts';
export type {
  AccountPermissions,
  PermissionsPlan,
  TopicPermission,
} from './permissions/plan.ts';
export { passwordVariable, planPermissions } from './permissions/plan.ts';
export { shellQuote, toRabbitmqctlScript } from './permissions/rabbitmqctl.ts';
export type { HandlerClearance, WorkerSettings } from './permissions/worker-settings.ts';
export type { ReplayGuard } from './replay-guard.ts';
export { DEFAULT_REPLAY_MAX_ENTRIES, MemoryReplayGuard } from './replay-guard.ts';
export { createSigner, signatureHeaders } from './signer.ts';
export type { SignatureVerifierOptions } from './verifier.ts';
export { DEFAULT_WINDOW_MS, SignatureVerifier } from './verifier.ts';
