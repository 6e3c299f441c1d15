// Unit tests for parseIdempotencyKey (PROTOCOL.md rule 5): bare tokens and Structured Field
// strings are both accepted; anything outside 1–255 printable ASCII without commas is a 400.
import { describe, expect, it } from 'vitest';
import { problemTypePrefix } from '../http/problem.js';
import { IdempotencyKeyInvalidError } from './errors.js';
import { maxIdempotencyKeyLength, parseIdempotencyKey } from './key.js';

function refusal(raw: string | string[]): IdempotencyKeyInvalidError {
  try {
    parseIdempotencyKey(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(IdempotencyKeyInvalidError);
    return error as IdempotencyKeyInvalidError;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
}

describe('parseIdempotencyKey', () => {
  it('returns undefined when the header is absent', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
  });

  it('accepts a bare token', () => {
    expect(parseIdempotencyKey('abc-123_XYZ.~')).toBe('abc-123_XYZ.~');
  });

  it('treats a Structured Field string and the same bare token as the same key', () => {
    expect(parseIdempotencyKey('"abc"')).toBe('abc');
    expect(parseIdempotencyKey('"abc"')).toBe(parseIdempotencyKey('abc'));
  });

  it('accepts a UUID, bare or quoted', () => {
    const uuid = '8e03978e-40d5-43e8-bc93-6894a57f9324';
    expect(parseIdempotencyKey(uuid)).toBe(uuid);
    expect(parseIdempotencyKey(`"${uuid}"`)).toBe(uuid);
  });

  it('unescapes \\" and \\\\ inside an sf-string', () => {
    expect(parseIdempotencyKey('"a\\"b"')).toBe('a"b');
    expect(parseIdempotencyKey('"a\\\\b"')).toBe('a\\b');
  });

  it('keeps spaces inside an sf-string but refuses them in a bare token', () => {
    expect(parseIdempotencyKey('"a b"')).toBe('a b');
    expect(refusal('a b').message).toContain('white space');
  });

  it('ignores white space around the field value', () => {
    expect(parseIdempotencyKey('  abc  ')).toBe('abc');
    expect(parseIdempotencyKey(' "abc" ')).toBe('abc');
  });

  it('refuses an escape other than \\" or \\\\ in an sf-string', () => {
    expect(refusal('"a\\nb"').message).toContain('invalid escape');
    expect(refusal('"a\\').message).toContain('does not close');
  });

  // Regression: the escape look-ahead once consumed the closing DQUOTE, so the unterminated sf-string
  // `"abc\"` (RFC 8941 §4.2.5: reaching the end after `\"` is a parse failure) becomes `abc"`.
  it('refuses an sf-string whose only closing quote is escaped ("abc\\")', () => {
    expect(refusal('"abc\\"').message).toContain('does not close');
  });

  it('accepts keys of 1 and 255 characters, bare and quoted', () => {
    expect(maxIdempotencyKeyLength).toBe(255);
    expect(parseIdempotencyKey('a')).toBe('a');
    expect(parseIdempotencyKey('"a"')).toBe('a');
    const longest = 'k'.repeat(255);
    expect(parseIdempotencyKey(longest)).toBe(longest);
    expect(parseIdempotencyKey(`"${longest}"`)).toBe(longest);
  });

  it('refuses an empty key, bare or quoted', () => {
    expect(refusal('').message).toContain('is empty');
    expect(refusal('   ').message).toContain('is empty');
    expect(refusal('""').message).toContain('is empty');
  });

  it('refuses a key of 256 characters, bare or quoted, and says how long it was', () => {
    expect(refusal('k'.repeat(256)).message).toContain('256 characters');
    expect(refusal(`"${'k'.repeat(256)}"`).message).toContain('256 characters');
  });

  it('refuses a comma, bare or quoted (a list is not one key)', () => {
    expect(refusal('a,b').message).toContain('comma');
    expect(refusal('"a,b"').message).toContain('comma');
    expect(refusal('"a", "b"').message).toBeTruthy();
  });

  it('refuses non-ASCII and control characters', () => {
    expect(refusal('clé').message).toContain('printable ASCII');
    expect(refusal('"clé"').message).toContain('printable ASCII');
    expect(refusal('a\u0001b').message).toContain('printable ASCII');
    expect(refusal('a\tb').message).toContain('printable ASCII');
    expect(refusal('"a\u007fb"').message).toContain('printable ASCII');
  });

  it('refuses unbalanced or stray quotes in an sf-string', () => {
    expect(refusal('"abc').message).toContain('does not close');
    expect(refusal('"').message).toContain('does not close');
    expect(refusal('"ab"c"').message).toContain('unescaped quote');
  });

  it('refuses a header sent twice, even with equal values', () => {
    expect(refusal(['a', 'b']).message).toContain('more than once');
    expect(refusal(['a', 'a']).message).toContain('more than once');
  });

  it('accepts a header that arrived as a one-item list', () => {
    expect(parseIdempotencyKey(['"abc"'])).toBe('abc');
  });

  it('refuses with a 400 idempotency-key-invalid problem whose detail says what to send', () => {
    const error = refusal('a,b');
    expect(error.status).toBe(400);
    expect(error.type).toBe(`${problemTypePrefix}idempotency-key-invalid`);
    expect(error.name).toBe('IdempotencyKeyInvalidError');
    const problem = error.toProblem();
    expect(problem.status).toBe(400);
    expect(problem.detail).toContain('Idempotency-Key header contains a comma');
    expect(problem.detail).toContain('1–255 printable ASCII characters');
  });

  it('names the header it was asked to read in the detail', () => {
    try {
      parseIdempotencyKey('', 'X-Request-Key');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain('X-Request-Key header is empty');
    }
  });
});
