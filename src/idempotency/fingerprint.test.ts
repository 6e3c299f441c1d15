// Unit tests for request fingerprints: what counts as "the same request" for a reused key
// (PROTOCOL.md rule 9): key order is ignored, array order, method, path and values are not.
import { describe, expect, it } from 'vitest';
import { canonicalJson, fingerprintRequest } from './fingerprint.js';

const fp = (body: unknown, method = 'POST', path = '/orders') => fingerprintRequest({ method, path, body });

describe('canonicalJson', () => {
  it('sorts object keys at every depth', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 3 } })).toBe(
      '{"a":{"c":3,"d":[{"y":2,"z":1}]},"b":1}',
    );
  });

  it('drops undefined properties', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });
});

describe('fingerprintRequest', () => {
  it('is a base64url sha256 (43 characters)', () => {
    expect(fp({ a: 1 })).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('ignores key order at the top level', () => {
    expect(fp({ sku: 'A', quantity: 2 })).toBe(fp({ quantity: 2, sku: 'A' }));
  });

  it('ignores key order at every depth, including objects inside arrays', () => {
    const one = {
      customer: { name: 'Ada', address: { city: 'X', zip: '1' } },
      items: [{ sku: 'A', qty: 1 }],
    };
    const two = {
      items: [{ qty: 1, sku: 'A' }],
      customer: { address: { zip: '1', city: 'X' }, name: 'Ada' },
    };
    expect(fp(one)).toBe(fp(two));
  });

  it('is sensitive to array order', () => {
    expect(fp({ items: ['a', 'b'] })).not.toBe(fp({ items: ['b', 'a'] }));
    expect(fp({ items: [{ sku: 'A' }, { sku: 'B' }] })).not.toBe(fp({ items: [{ sku: 'B' }, { sku: 'A' }] }));
  });

  it('is sensitive to values and their JSON types', () => {
    expect(fp({ quantity: 2 })).not.toBe(fp({ quantity: 3 }));
    expect(fp({ quantity: 2 })).not.toBe(fp({ quantity: '2' }));
    expect(fp({ a: null })).not.toBe(fp({}));
  });

  it('is sensitive to a deep change', () => {
    expect(fp({ a: { b: { c: [1, { d: 1 }] } } })).not.toBe(fp({ a: { b: { c: [1, { d: 2 }] } } }));
  });

  it('depends on the method, but not on its case', () => {
    expect(fp({ a: 1 }, 'POST')).not.toBe(fp({ a: 1 }, 'PUT'));
    expect(fp({ a: 1 }, 'post')).toBe(fp({ a: 1 }, 'POST'));
  });

  it('depends on the path', () => {
    expect(fp({ a: 1 }, 'PUT', '/users/1')).not.toBe(fp({ a: 1 }, 'PUT', '/users/2'));
  });

  it('ignores undefined properties at every depth', () => {
    expect(fp({ a: 1, b: undefined })).toBe(fp({ a: 1 }));
    expect(fp({ a: { b: 1, c: undefined } })).toBe(fp({ a: { b: 1 } }));
    expect(fp({ items: [{ sku: 'A', note: undefined }] })).toBe(fp({ items: [{ sku: 'A' }] }));
  });

  it('treats a missing body like a null body, and unlike an empty object', () => {
    expect(fp(undefined)).toBe(fp(null));
    expect(fp(undefined)).not.toBe(fp({}));
  });

  it('does not confuse method/path/body boundaries', () => {
    expect(fingerprintRequest({ method: 'POST', path: '/a', body: 'b' })).not.toBe(
      fingerprintRequest({ method: 'POST', path: '/ab', body: '' }),
    );
  });
});
