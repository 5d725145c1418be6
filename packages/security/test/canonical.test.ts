import { describe, expect, it } from 'vitest';
import {
  CanonicalFormError,
  canonicalBytes,
  signatureHeaders,
  signedFields,
} from '../src/index.ts';
import { VECTORS, vectorKeys } from './vectors.ts';

/** The expected output of each vector, as docs/signing.md prints it. */
const EXPECTED = [
  {
    hex:
      '010000001377617272656e2d7369676e61747572652d7631010000000b686d61632d736861323536010000000d' +
      '766563746f722d686d61632d3101000000086a6f622d30303031010000000461636d65010000000a7265737472' +
      '6963746564010000000135010000000d313736373232353630303030300100000012666561747572652d657874' +
      '72616374696f6e010000000d3137363732323530303030303001000000106170706c69636174696f6e2f6a736f' +
      '6e010000000c7265706c6965732e61636d6501000000107b2274657874223a2268656c6c6f227d',
    signature: 'Q+PPCTZXHqBmqkfO8q4iedc3kz6UaSTFBiRKPbSHrJA=',
  },
  {
    hex:
      '010000001377617272656e2d7369676e61747572652d7631010000000b686d61632d736861323536010000000d' +
      '766563746f722d686d61632d3101000000086a6f622d303030320100000006676c6f6265780000000100000013' +
      '746578742d636c617373696669636174696f6e010000000d3137363732323530303030303001000000106170' +
      '706c69636174696f6e2f6a736f6e00010000000f7b2274657874223a227a6fc3ab227d',
    signature: 'XMLQiD+xR3kCjZMVSyxzYwviIGs02ZHPb2mAdGzg8JM=',
  },
  {
    hex:
      '010000001377617272656e2d7369676e61747572652d76310100000007656432353531390100000010766563' +
      '746f722d656432353531392d3101000000086a6f622d30303033010000000461636d6501000000067075626c' +
      '6963010000000130000100000012666561747572652d65787472616374696f6e010000000d31373637323235' +
      '30303030303001000000106170706c69636174696f6e2f6a736f6e0001000000107b2274657874223a226865' +
      '6c6c6f227d',
    signature:
      'V6uUL2voio0r7sKYAljc9htfD4hcfiUzuqOwV1gafXjMDYESqF6umfDUhJfgeC1iF2BxGvrV5mToYAWZ1iZ1CQ==',
  },
];

describe('the canonical form', () => {
  const keys = vectorKeys();

  it.each(VECTORS.map((vector, index) => ({ ...vector, index })))(
    'gives the documented bytes and signature for $name',
    ({ key, body, properties, index }) => {
      const signing = keys[key];
      const bytes = canonicalBytes(signedFields(properties, signing.alg, signing.id), body);

      expect(bytes.toString('hex')).toBe(EXPECTED[index]!.hex);
      expect(signatureHeaders(signing, body, properties)).toEqual({
        'x-warren-signature-alg': signing.alg,
        'x-warren-key-id': signing.id,
        'x-warren-signature': EXPECTED[index]!.signature,
      });
    },
  );

  it('tells an absent field from an empty one, and a moved boundary from the original', () => {
    const of = (tenant: string | undefined, scope: string | undefined) =>
      canonicalBytes(
        signedFields(
          { headers: { 'x-warren-tenant': tenant, 'x-warren-scope': scope } },
          'hmac-sha256',
          'k',
        ),
        Buffer.alloc(0),
      ).toString('hex');

    expect(of(undefined, 'ab')).not.toBe(of('', 'ab'));
    expect(of('a', 'b')).not.toBe(of('ab', undefined));
    expect(of('a', 'b')).not.toBe(of('', 'ab'));
  });

  it('signs an integer header the same whether it travels as a number or a decimal string', () => {
    const fields = (createdAt: number | string) =>
      signedFields({ headers: { 'x-warren-created-at': createdAt } }, 'hmac-sha256', 'k');

    expect(fields(1_700_000_000_000)).toEqual(fields('1700000000000'));
  });

  it('refuses an integer header that is not an integer', () => {
    expect(() =>
      signedFields({ headers: { 'x-warren-deadline': 'soon' } }, 'hmac-sha256', 'k'),
    ).toThrow(CanonicalFormError);
  });
});
