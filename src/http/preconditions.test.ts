// Unit tests for evaluateWritePreconditions: RFC 9110 §13.2.2 order (If-Match, then
// If-None-Match), 412 for failed conditions and 428 when If-Match is required (PROTOCOL.md 15–17).
import { describe, expect, it } from 'vitest';
import { evaluateWritePreconditions, type WritePreconditionInput } from './preconditions.js';
import { PreconditionFailedError, PreconditionRequiredError, problemTypePrefix } from './problem.js';

const current = '"v2"';

function input(overrides: Partial<WritePreconditionInput>): WritePreconditionInput {
  return {
    ifMatch: undefined,
    ifNoneMatch: undefined,
    currentEtag: current,
    resource: 'User 7',
    requireIfMatch: false,
    ...overrides,
  };
}

function failure(overrides: Partial<WritePreconditionInput>): Error {
  try {
    evaluateWritePreconditions(input(overrides));
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the preconditions to fail');
}

describe('evaluateWritePreconditions', () => {
  describe('If-Match', () => {
    it('replaces when If-Match carries the current strong ETag', () => {
      expect(evaluateWritePreconditions(input({ ifMatch: current, requireIfMatch: true }))).toBe('replace');
    });

    it('replaces when the current ETag is one member of an If-Match list', () => {
      expect(evaluateWritePreconditions(input({ ifMatch: '"v1", "v2"' }))).toBe('replace');
    });

    it('replaces with If-Match: * on an existing resource', () => {
      expect(evaluateWritePreconditions(input({ ifMatch: '*', requireIfMatch: true }))).toBe('replace');
    });

    it('is 412 with a stale If-Match, naming the current ETag', () => {
      const error = failure({ ifMatch: '"v1"' });
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect((error as PreconditionFailedError).status).toBe(412);
      expect((error as PreconditionFailedError).type).toBe(`${problemTypePrefix}precondition-failed`);
      expect(error.message).toContain('"v2"');
      expect(error.message).toContain('User 7');
    });

    it('is 412 with a weak If-Match, even for the current tag (strong comparison)', () => {
      expect(failure({ ifMatch: `W/${current}` })).toBeInstanceOf(PreconditionFailedError);
    });

    it('is 412 with a malformed If-Match', () => {
      expect(failure({ ifMatch: 'v2' })).toBeInstanceOf(PreconditionFailedError);
    });

    it('is 412 when the resource does not exist, even with If-Match: *', () => {
      for (const ifMatch of ['*', '"v2"']) {
        const error = failure({ ifMatch, currentEtag: undefined });
        expect(error).toBeInstanceOf(PreconditionFailedError);
        expect(error.message).toContain('does not exist');
      }
    });
  });

  describe('If-None-Match', () => {
    it('is 412 with If-None-Match: * on an existing resource', () => {
      const error = failure({ ifNoneMatch: '*' });
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error.message).toContain('already exists');
    });

    it('creates with If-None-Match: * on a missing resource', () => {
      expect(evaluateWritePreconditions(input({ ifNoneMatch: '*', currentEtag: undefined }))).toBe('create');
      expect(
        evaluateWritePreconditions(input({ ifNoneMatch: '*', currentEtag: undefined, requireIfMatch: true })),
      ).toBe('create');
    });

    it('is 412 when If-None-Match lists the current tag, weak or strong', () => {
      expect(failure({ ifNoneMatch: '"v2"' })).toBeInstanceOf(PreconditionFailedError);
      expect(failure({ ifNoneMatch: '"v1", W/"v2"' })).toBeInstanceOf(PreconditionFailedError);
    });

    it('lets the write through when If-None-Match lists only other tags', () => {
      expect(evaluateWritePreconditions(input({ ifNoneMatch: '"v1"' }))).toBe('replace');
    });

    it('is 412 with a malformed If-None-Match', () => {
      const error = failure({ ifNoneMatch: 'v1' });
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error.message).toContain('not a valid entity-tag list');
    });
  });

  describe('order (RFC 9110 §13.2.2)', () => {
    it('decides If-Match before If-None-Match: a stale If-Match wins over a failing If-None-Match', () => {
      const error = failure({ ifMatch: '"v1"', ifNoneMatch: '*' });
      expect(error).toBeInstanceOf(PreconditionFailedError);
      expect(error.message).toContain('changed by someone else');
    });

    it('decides If-Match on a missing resource before If-None-Match: * could say create', () => {
      const error = failure({ ifMatch: '"v1"', ifNoneMatch: '*', currentEtag: undefined });
      expect(error.message).toContain('does not exist');
    });

    it('still applies If-None-Match after a passing If-Match', () => {
      const error = failure({ ifMatch: current, ifNoneMatch: '*' });
      expect(error.message).toContain('already exists');
    });
  });

  describe('428 Precondition Required', () => {
    it('is 428 for a write to an existing resource without If-Match when required', () => {
      const error = failure({ requireIfMatch: true });
      expect(error).toBeInstanceOf(PreconditionRequiredError);
      expect((error as PreconditionRequiredError).status).toBe(428);
      expect((error as PreconditionRequiredError).type).toBe(`${problemTypePrefix}precondition-required`);
      expect(error.message).toContain('If-Match');
    });

    it('is 428 when only a non-matching If-None-Match is sent to an existing resource', () => {
      expect(failure({ requireIfMatch: true, ifNoneMatch: '"v1"' })).toBeInstanceOf(
        PreconditionRequiredError,
      );
    });

    it('replaces without If-Match when the route does not require it', () => {
      expect(evaluateWritePreconditions(input({}))).toBe('replace');
    });

    it('creates without headers when the resource is missing, required or not', () => {
      expect(evaluateWritePreconditions(input({ currentEtag: undefined, requireIfMatch: true }))).toBe(
        'create',
      );
      expect(evaluateWritePreconditions(input({ currentEtag: undefined }))).toBe('create');
    });
  });
});
