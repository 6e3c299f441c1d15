// Unit tests for body encoding and local validation, and for the resource names in messages.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { encodeBody, UnsendableBodyError, validateInput } from './body.js';
import { describeResource } from './result.js';

const json = { form: false, contentType: undefined, mayRepeat: true };

describe('encodeBody', () => {
  it('encodes JSON by default and forms on request', async () => {
    expect(await encodeBody({ a: 1 }, json)).toEqual({
      body: '{"a":1}',
      contentType: 'application/json',
      streamed: false,
    });
    expect((await encodeBody({ a: 1, b: ['x', 'y'], c: null }, { ...json, form: true })).body).toBe(
      'a=1&b=x&b=y',
    );
    expect((await encodeBody(new URLSearchParams('q=1'), json)).contentType).toBe(
      'application/x-www-form-urlencoded',
    );
    expect(await encodeBody(undefined, json)).toEqual({
      body: undefined,
      contentType: undefined,
      streamed: false,
    });
  });
  it('throws for bodies it cannot encode', async () => {
    await expect(encodeBody({ nested: { a: 1 } }, { ...json, form: true })).rejects.toThrow(TypeError);
    await expect(encodeBody(() => 1, json)).rejects.toThrow(UnsendableBodyError);
  });
  it('defect 2: refuses a Map, a Set or a class instance (even nested) instead of sending {}', async () => {
    await expect(encodeBody(new Map([['a', 1]]), json)).rejects.toThrow(/a Map is not JSON/);
    await expect(encodeBody({ tags: new Set(['a']) }, json)).rejects.toThrow(/a Set is not JSON/);
    await expect(encodeBody({ big: 1n }, json)).rejects.toThrow(/bigint/);
    // toJSON is applied first, so Dates (and URLs) still travel as strings.
    expect((await encodeBody({ at: new Date(0) }, json)).body).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
  });
  it('defect 2: encodes a FormData once, so every attempt sends the same multipart bytes', async () => {
    const form = new FormData();
    form.append('name', 'ann');
    const encoded = await encodeBody(form, json);
    expect(encoded.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(encoded.body).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(encoded.body as Uint8Array)).toContain('ann');
  });
  it('defect 2: copies bytes, keeps a Blob, and buffers a stream only when the call may repeat', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const encoded = await encodeBody(bytes.subarray(1), json);
    bytes[1] = 9;
    expect(encoded).toEqual({
      body: new Uint8Array([2, 3]),
      contentType: 'application/octet-stream',
      streamed: false,
    });
    const blob = new Blob(['x'], { type: 'text/plain' });
    expect(await encodeBody(blob, json)).toEqual({ body: blob, contentType: 'text/plain', streamed: false });
    const stream = () => new Blob(['abc']).stream();
    expect((await encodeBody(stream(), { ...json, mayRepeat: false })).streamed).toBe(true);
    expect((await encodeBody(stream(), json)).body).toEqual(new TextEncoder().encode('abc'));
  });
  it('sends a string as it is when the caller set a content type, as JSON otherwise', async () => {
    expect((await encodeBody('a,b', { ...json, contentType: 'text/csv' })).body).toBe('a,b');
    expect((await encodeBody('a,b', json)).body).toBe('"a,b"');
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
