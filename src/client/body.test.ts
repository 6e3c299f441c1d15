// Unit tests for body encoding and local validation, and for the resource names in messages.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { encodeBody, validateInput } from './body.js';
import { describeResource } from './result.js';

describe('encodeBody', () => {
  it('encodes JSON by default and forms on request', () => {
    expect(encodeBody({ a: 1 }, false)).toEqual({ body: '{"a":1}', contentType: 'application/json' });
    expect(encodeBody({ a: 1, b: ['x', 'y'], c: null }, true).body).toBe('a=1&b=x&b=y');
    expect(encodeBody(new URLSearchParams('q=1'), false).contentType).toBe(
      'application/x-www-form-urlencoded',
    );
    expect(encodeBody(undefined, false)).toEqual({ body: undefined, contentType: undefined });
  });
  it('throws for bodies it cannot encode', () => {
    expect(() => encodeBody({ nested: { a: 1 } }, true)).toThrow(TypeError);
    expect(() => encodeBody(() => 1, false)).toThrow(TypeError);
  });
});

describe('validateInput', () => {
  it('turns issue paths into JSON Pointers', async () => {
    const schema = z.object({ items: z.array(z.object({ 'a/b': z.number() })) });
    const result = await validateInput(schema, { items: [{ 'a/b': 'x' }] });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.fieldErrors[0]?.pointer).toBe('/items/0/a~1b');
  });
  it('rejects something that is not a Standard Schema', async () => {
    await expect(validateInput({} as never, 1)).rejects.toThrow(TypeError);
  });
});

describe('describeResource', () => {
  it('names resources the way people do', () => {
    expect(describeResource('/users/123')).toBe('User 123');
    expect(describeResource('http://x.test/orders/o-1?x=1')).toBe('Order o-1');
    expect(describeResource('/users')).toBe('The resource at /users');
  });
});
