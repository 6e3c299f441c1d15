// Unit tests for the negotiation helpers: Prefer, Post/Redirect/Get and 304 decisions.
import { describe, expect, it } from 'vitest';
import { isNotModified, prefersMinimal, wantsSeeOther } from './negotiation.js';

describe('prefersMinimal', () => {
  it('reads return=minimal among other preferences, in any case and in repeated headers', () => {
    expect(prefersMinimal('return=minimal')).toBe(true);
    expect(prefersMinimal('respond-async, wait=10; return=minimal')).toBe(true);
    expect(prefersMinimal(['wait=5', 'Return=Minimal'])).toBe(true);
  });
  it('is false for return=representation, a look-alike or no header', () => {
    expect(prefersMinimal('return=representation')).toBe(false);
    expect(prefersMinimal('xreturn=minimal')).toBe(false);
    expect(prefersMinimal(undefined)).toBe(false);
  });
});

describe('wantsSeeOther', () => {
  it('is true only for a form post that accepts HTML', () => {
    expect(wantsSeeOther('application/x-www-form-urlencoded', 'text/html,application/xhtml+xml')).toBe(true);
    expect(wantsSeeOther('Application/X-WWW-Form-Urlencoded; charset=utf-8', 'text/html')).toBe(true);
    expect(wantsSeeOther('application/json', 'text/html')).toBe(false);
    expect(wantsSeeOther('application/x-www-form-urlencoded', 'application/json')).toBe(false);
    expect(wantsSeeOther(undefined, undefined)).toBe(false);
  });
});

describe('isNotModified', () => {
  it('matches weakly, in lists and with *', () => {
    expect(isNotModified('"v1"', '"v1"')).toBe(true);
    expect(isNotModified('W/"v1"', '"v1"')).toBe(true);
    expect(isNotModified('"v0", "v1"', '"v1"')).toBe(true);
    expect(isNotModified('*', '"v1"')).toBe(true);
  });
  it('does not match another tag, garbage or no header', () => {
    expect(isNotModified('"v2"', '"v1"')).toBe(false);
    expect(isNotModified('not a tag', '"v1"')).toBe(false);
    expect(isNotModified(undefined, '"v1"')).toBe(false);
  });
});
