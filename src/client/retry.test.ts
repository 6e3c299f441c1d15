// Unit tests for the retry policy: eligibility per method and key, backoff bounds, Retry-After
// in both forms, and how `sent` adds up across attempts.
import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  combineSent,
  isSafeToRepeat,
  mayRetryFailure,
  parseRetryAfterMs,
  sentForStatus,
} from './retry.js';

describe('mayRetryFailure', () => {
  it('repeats a never-sent request for any method', () => {
    expect(mayRetryFailure({ sent: 'no' }, isSafeToRepeat('POST', false))).toBe(true);
  });

  it('repeats a maybe-sent request only when it is idempotent or keyed', () => {
    expect(mayRetryFailure({ sent: 'maybe' }, isSafeToRepeat('POST', false))).toBe(false);
    expect(mayRetryFailure({ sent: 'maybe' }, isSafeToRepeat('POST', true))).toBe(true);
    for (const method of ['GET', 'PUT', 'DELETE', 'put']) {
      expect(mayRetryFailure({ sent: 'maybe' }, isSafeToRepeat(method, false))).toBe(true);
    }
  });

  it('repeats 429 for anyone, gateway errors and in-use only when safe, and never 500 or 4xx', () => {
    expect(mayRetryFailure({ status: 429, inUse: false }, false)).toBe(true);
    for (const status of [502, 503, 504, 408]) {
      expect(mayRetryFailure({ status, inUse: false }, false)).toBe(false);
      expect(mayRetryFailure({ status, inUse: false }, true)).toBe(true);
    }
    expect(mayRetryFailure({ status: 409, inUse: true }, true)).toBe(true);
    for (const status of [400, 404, 409, 412, 422, 428, 500]) {
      expect(mayRetryFailure({ status, inUse: false }, true)).toBe(false);
    }
  });
});

describe('backoffDelayMs', () => {
  it('doubles the cap per retry up to maxDelayMs, and jitters below it', () => {
    expect([0, 1, 2, 3, 10].map((i) => backoffDelayMs(i, 100, 500, () => 0.999999))).toEqual([
      99, 199, 399, 499, 499,
    ]);
    expect(backoffDelayMs(3, 100, 500, () => 0)).toBe(0);
    expect(Number.isFinite(backoffDelayMs(5_000, 100, 500, () => 0.5))).toBe(true);
  });
});

describe('parseRetryAfterMs', () => {
  const nowMs = Date.parse('2026-01-01T00:00:00Z');
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfterMs('3', nowMs)).toBe(3_000);
    expect(parseRetryAfterMs(' 0 ', nowMs)).toBe(0);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:07 GMT', nowMs)).toBe(7_000);
    expect(parseRetryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', nowMs)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    for (const value of [null, undefined, '', '-1', '1.5', 'soon'])
      expect(parseRetryAfterMs(value, nowMs)).toBeUndefined();
  });
});

describe('sent', () => {
  it('lets the last answer win, and keeps an earlier maybe over a later never-sent', () => {
    expect(combineSent('maybe', 'yes')).toBe('yes');
    expect(combineSent('maybe', 'no')).toBe('maybe');
    expect(combineSent('yes', 'maybe')).toBe('maybe');
    expect(combineSent('yes', 'no')).toBe('yes');
    expect(combineSent('no', 'no')).toBe('no');
  });
  it('treats gateway answers as maybe', () => {
    expect([200, 429, 500, 502, 504].map(sentForStatus)).toEqual(['yes', 'yes', 'yes', 'maybe', 'maybe']);
  });
});
