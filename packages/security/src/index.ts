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
export type { CommandCredentialSourceOptions } from './credentials/command-source.ts';
export {
  CommandCredentialSource,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_REFRESH_INTERVAL_MS,
} from './credentials/command-source.ts';
export type { CredentialSourceSpec } from './credentials/credential-source.ts';
export { credentialSource } from './credentials/credential-source.ts';
export type { Credentials } from './credentials/credentials.ts';
export { parseCredentials, sameCredentials } from './credentials/credentials.ts';
export { EnvCredentialSource } from './credentials/env-source.ts';
export type { FileCredentialSourceOptions } from './credentials/file-source.ts';
export { DEFAULT_POLL_INTERVAL_MS, FileCredentialSource } from './credentials/file-source.ts';
export type { CredentialSource, CredentialsListener } from './credentials/source.ts';
export type { AesGcmDecryptorOptions } from './encryption/decryptor.ts';
export { AesGcmDecryptor } from './encryption/decryptor.ts';
export { createEncryptor, sealBody } from './encryption/encryptor.ts';
export type { EncryptionAlgorithm } from './encryption/format.ts';
export {
  AAD_TAG,
  associatedData,
  ENCRYPTION_ALGORITHM,
  IV_BYTES,
  TAG_BYTES,
} from './encryption/format.ts';
export type { EncryptionKey, EncryptionKeyFile } from './encryption/keys.ts';
export { aesKey, EncryptionKeySet } from './encryption/keys.ts';
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
