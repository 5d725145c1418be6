import { HEADERS, type HeaderValue, type MessageProperties } from '@warren/core';

/** The signature algorithms Warren knows, by the name the `x-warren-signature-alg` header uses. */
export const ALGORITHMS = ['hmac-sha256', 'ed25519'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** The first field of every canonical form: names the format, so that v2 cannot be confused. */
export const CANONICAL_TAG = 'warren-signature-v1';

/**
 * The signed fields, in canonical order after the tag (docs/signing.md is the contract). Each is
 * a string or absent; the body comes last, as raw bytes.
 */
export interface SignedFields {
  alg: string;
  keyId: string;
  messageId?: string;
  tenant?: string;
  scope?: string;
  priority?: string;
  deadline?: string;
  modelType?: string;
  createdAt?: string;
  contentType?: string;
  replyTo?: string;
}

const FIELD_ORDER = [
  'alg',
  'keyId',
  'messageId',
  'tenant',
  'scope',
  'priority',
  'deadline',
  'modelType',
  'createdAt',
  'contentType',
  'replyTo',
] as const satisfies ReadonlyArray<keyof SignedFields>;

/** A job field that cannot be put in canonical form (an integer header that is not one). */
export class CanonicalFormError extends Error {
  override name = 'CanonicalFormError';
}

/** Reads the signed fields from a job's properties, as they travel on the wire. */
export function signedFields(
  properties: MessageProperties,
  alg: string,
  keyId: string,
): SignedFields {
  const headers = properties.headers ?? {};
  return {
    alg,
    keyId,
    messageId: text(properties.messageId, 'message_id'),
    tenant: text(headers[HEADERS.tenant], HEADERS.tenant),
    scope: text(headers[HEADERS.scope], HEADERS.scope),
    priority: integer(properties.priority, 'priority'),
    deadline: integer(headers[HEADERS.deadline], HEADERS.deadline),
    modelType: text(headers[HEADERS.modelType], HEADERS.modelType),
    createdAt: integer(headers[HEADERS.createdAt], HEADERS.createdAt),
    contentType: text(properties.contentType, 'content_type'),
    replyTo: text(properties.replyTo, 'reply_to'),
  };
}

/**
 * The bytes that are signed: the tag, each field of {@link FIELD_ORDER}, then the body. A present
 * field is the byte 0x01, its UTF-8 length as a 4-byte big-endian integer, and its UTF-8 bytes;
 * an absent one is the single byte 0x00. No value can be read as another: every length is
 * explicit, and absent differs from empty.
 */
export function canonicalBytes(fields: SignedFields, body: Buffer): Buffer {
  const parts: Buffer[] = [encodeField(CANONICAL_TAG)];
  for (const name of FIELD_ORDER) parts.push(encodeField(fields[name]));
  parts.push(present(body));
  return Buffer.concat(parts);
}

const ABSENT = Buffer.from([0x00]);

/**
 * One field as the signing canonical form (and the encryption's associated data) writes it: 0x01,
 * its UTF-8 length as 4 bytes big-endian and the bytes; or 0x00 when it is absent.
 */
export function encodeField(value: string | undefined): Buffer {
  return value === undefined ? ABSENT : present(Buffer.from(value, 'utf-8'));
}

function present(bytes: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(0x01, 0);
  prefix.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([prefix, bytes]);
}

function text(value: HeaderValue | Buffer, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Buffer.isBuffer(value)) return value.toString('utf-8');
  if (typeof value === 'string') return value;
  throw new CanonicalFormError(`${field}: expected a string, found ${typeof value}`);
}

/**
 * Integers are signed as their shortest decimal form, whether they travel as AMQP numbers or
 * as decimal strings: the two are the same job to the worker, so they sign the same.
 */
function integer(value: HeaderValue | Buffer, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  const raw = Buffer.isBuffer(value) ? value.toString('utf-8') : value;
  const number =
    typeof raw === 'number'
      ? raw
      : typeof raw === 'string' && /^\d+$/.test(raw)
        ? Number(raw)
        : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 0) {
    throw new CanonicalFormError(`${field}: expected a non-negative integer, found ${String(raw)}`);
  }
  return String(number);
}
