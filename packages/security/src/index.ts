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
export type { KeyFile, SigningKey } from './keys.ts';
export { ed25519Key, hmacKey, KeySet } from './keys.ts';
export type { ReplayGuard } from './replay-guard.ts';
export { DEFAULT_REPLAY_MAX_ENTRIES, MemoryReplayGuard } from './replay-guard.ts';
export { createSigner, signatureHeaders } from './signer.ts';
export type { SignatureVerifierOptions } from './verifier.ts';
export { DEFAULT_WINDOW_MS, SignatureVerifier } from './verifier.ts';
