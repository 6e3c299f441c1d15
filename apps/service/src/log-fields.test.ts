// Unit: the Idempotency-Key fingerprint logged instead of the key.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { logFingerprint, serializeLoggedError } from './log-fields.js';

describe('logFingerprint', () => {
  it('is the first 16 hex characters of the SHA-256, so operators can compute it from a key', () => {
    const key = 'order-2024-customer-text';
    const full = createHash('sha256').update(key).digest('hex');
    expect(logFingerprint(key)).toBe(full.slice(0, 16));
    expect(logFingerprint(key)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('never is the key, even one that looks like a fingerprint, and tells keys apart', () => {
    for (const key of ['0123456789abcdef', 'deadbeefdeadbeef', 'x'.repeat(255)]) {
      expect(logFingerprint(key)).not.toBe(key.slice(0, 16));
    }
    expect(logFingerprint('key-1')).not.toBe(logFingerprint('key-2'));
    expect(logFingerprint('key-1')).toBe(logFingerprint('key-1'));
  });

  it('leaves no field for a request without a key', () => {
    expect(logFingerprint(undefined)).toBeUndefined();
    expect(logFingerprint('')).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('serializeLoggedError', () => {
  it('keeps kind, message, code and stack but not the row values a driver error quotes', () => {
    const error = Object.assign(new Error('duplicate key value violates unique constraint "users_pkey"'), {
      code: '23505',
      detail: 'Key (username)=(sentinel-alice) already exists.',
      where: 'SQL function sentinel-where',
      parameters: ['sentinel-param'],
    });
    const logged = serializeLoggedError(error);
    expect(logged).toMatchObject({ type: 'Error', code: '23505', message: error.message });
    expect(typeof logged.stack).toBe('string');
    expect(JSON.stringify(logged)).not.toContain('sentinel');
  });

  it('logs only the type of a thrown non-error', () => {
    expect(serializeLoggedError('secret text')).toEqual({ type: 'string', message: '', stack: '' });
  });
});
