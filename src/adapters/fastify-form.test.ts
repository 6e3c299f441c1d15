// Unit tests for HTML-form bodies: coerceFormValue on its own, and the formBodies plugin in a
// Fastify app, where a form and the equivalent JSON validate and fingerprint as one request.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { problemTypePrefix } from '../http/problem.js';
import { createMemoryStore } from '../stores/memory.js';
import { idempotency, problemErrorHandler, problemNotFoundHandler } from './fastify.js';
import { coerceFormValue, formBodies } from './fastify-form.js';

const orderSchema = {
  type: 'object',
  required: ['customer', 'items'],
  additionalProperties: false,
  properties: {
    customer: { type: 'string' },
    note: { type: 'string' },
    express: { type: 'boolean' },
    discount: { type: ['number', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    priorities: { type: 'array', items: { type: 'integer' } },
    items: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['sku', 'quantity'],
        additionalProperties: false,
        properties: { sku: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } },
      },
    },
  },
};

describe('coerceFormValue', () => {
  it('turns integer strings into integers, including negatives', () => {
    expect(coerceFormValue('42', { type: 'integer' })).toBe(42);
    expect(coerceFormValue('-3', { type: 'integer' })).toBe(-3);
  });

  it('turns decimal strings into numbers where the schema wants a number', () => {
    expect(coerceFormValue('4.5', { type: 'number' })).toBe(4.5);
    expect(coerceFormValue('7', { type: 'number' })).toBe(7);
  });

  it('turns "true" and "false" into booleans', () => {
    expect(coerceFormValue('true', { type: 'boolean' })).toBe(true);
    expect(coerceFormValue('false', { type: 'boolean' })).toBe(false);
  });

  it('leaves values that do not convert for the validator', () => {
    expect(coerceFormValue('4.5', { type: 'integer' })).toBe('4.5');
    expect(coerceFormValue('two', { type: 'integer' })).toBe('two');
    expect(coerceFormValue('1abc', { type: 'number' })).toBe('1abc');
    expect(coerceFormValue('yes', { type: 'boolean' })).toBe('yes');
  });

  it('keeps strings where the schema wants strings, even when they look like numbers', () => {
    expect(coerceFormValue('0042', { type: 'string' })).toBe('0042');
  });

  it('uses the non-null member of a nullable type', () => {
    expect(coerceFormValue('2.5', { type: ['number', 'null'] })).toBe(2.5);
    expect(coerceFormValue('3', { type: ['null', 'integer'] })).toBe(3);
  });

  it('drops empty strings for non-string fields and keeps them for strings', () => {
    const schema = {
      type: 'object',
      properties: { quantity: { type: 'integer' }, note: { type: 'string' }, express: { type: 'boolean' } },
    };
    expect(coerceFormValue({ quantity: '', note: '', express: '' }, schema)).toEqual({ note: '' });
  });

  it('wraps a lone value into a one-item array and coerces array items', () => {
    const schema = { type: 'array', items: { type: 'integer' } };
    expect(coerceFormValue('5', schema)).toEqual([5]);
    expect(coerceFormValue(['1', '2'], schema)).toEqual([1, 2]);
  });

  it('turns an index-keyed object (a sparse or long qs array) into an array in index order', () => {
    const schema = { type: 'array', items: { type: 'integer' } };
    expect(coerceFormValue({ 0: '1', 1: '2', 10: '3' }, schema)).toEqual([1, 2, 3]);
  });

  it('coerces nested objects inside arrays and leaves unknown fields alone for the validator', () => {
    const schema = orderSchema as Parameters<typeof coerceFormValue>[1];
    expect(
      coerceFormValue(
        { customer: 'ada', items: [{ sku: 'A', quantity: '2', colour: 'red' }], extra: '1' },
        schema,
      ),
    ).toEqual({ customer: 'ada', items: [{ sku: 'A', quantity: 2, colour: 'red' }], extra: '1' });
  });

  it('leaves non-string scalars untouched', () => {
    expect(coerceFormValue(3, { type: 'integer' })).toBe(3);
    expect(coerceFormValue(undefined, { type: 'integer' })).toBeUndefined();
  });
});

describe('the formBodies plugin', () => {
  let app: FastifyInstance;
  afterEach(async () => app.close());

  async function build(withIdempotency = false): Promise<{ runs: () => number }> {
    let runs = 0;
    app = Fastify({
      logger: false,
      ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
    });
    app.setErrorHandler(problemErrorHandler);
    app.setNotFoundHandler(problemNotFoundHandler);
    await app.register(formBodies);
    await app.register(idempotency, { store: createMemoryStore(), scope: () => 't' });
    app.post(
      '/orders',
      {
        schema: { body: orderSchema },
        ...(withIdempotency ? { config: { idempotency: 'required' as const } } : {}),
      },
      async (request, reply) => {
        runs++;
        return reply.idempotent(() => ({
          status: 201,
          headers: { location: `/orders/${runs}` },
          body: request.body,
        }));
      },
    );
    await app.ready();
    return { runs: () => runs };
  }

  const postForm = (payload: string, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/orders',
      payload,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });

  it('parses bracketed nested fields and coerces them by the route schema', async () => {
    await build();
    const res = await postForm(
      'customer=ada&items[0][sku]=A&items[0][quantity]=2&items[1][sku]=B&items[1][quantity]=10&express=true&discount=0.5',
    );
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      customer: 'ada',
      express: true,
      discount: 0.5,
      items: [
        { sku: 'A', quantity: 2 },
        { sku: 'B', quantity: 10 },
      ],
    });
  });

  it('coerces a form whose media type is written in capitals (media types are case-insensitive)', async () => {
    await build();
    const res = await postForm('customer=ada&items[0][sku]=A&items[0][quantity]=2', {
      'content-type': 'APPLICATION/X-WWW-FORM-URLENCODED',
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().items).toEqual([{ sku: 'A', quantity: 2 }]);
  });

  it('builds arrays from repeated keys, from a[] and from a single value', async () => {
    await build();
    const base = 'customer=ada&items[0][sku]=A&items[0][quantity]=1';
    for (const [form, expected] of [
      ['tags=x&tags=y&priorities=3&priorities=1', { tags: ['x', 'y'], priorities: [3, 1] }],
      ['tags[]=x&tags[]=y&priorities[]=3', { tags: ['x', 'y'], priorities: [3] }],
      ['tags=x&priorities=2', { tags: ['x'], priorities: [2] }],
    ] as const) {
      const res = await postForm(`${base}&${form}`);
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject(expected);
    }
  });

  it('treats an empty non-string input as not given, and keeps an empty string field', async () => {
    await build();
    const res = await postForm('customer=ada&note=&discount=&items[0][sku]=A&items[0][quantity]=1');
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ customer: 'ada', note: '', items: [{ sku: 'A', quantity: 1 }] });
  });

  it('lets the validator reject an empty required number with a pointer to it', async () => {
    await build();
    const res = await postForm('customer=ada&items[0][sku]=A&items[0][quantity]=');
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ errors: [{ pointer: '/items/0/quantity', detail: 'is required' }] });
  });

  it('leaves an unconvertible value for the validator, which answers 422 with its pointer', async () => {
    await build();
    const res = await postForm('customer=ada&items[0][sku]=A&items[0][quantity]=two');
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json() as { type: string; errors: { pointer: string }[] };
    expect(body.type).toBe(`${problemTypePrefix}validation`);
    expect(body.errors.map((e) => e.pointer)).toEqual(['/items/0/quantity']);
  });

  it('fingerprints a form body like the equivalent JSON: the second is a replay, not a 422', async () => {
    const { runs } = await build(true);
    const json = await app.inject({
      method: 'POST',
      url: '/orders',
      payload: { items: [{ quantity: 2, sku: 'A' }], customer: 'ada', tags: ['x'] },
      headers: { 'idempotency-key': 'k1' },
    });
    expect(json.statusCode).toBe(201);
    const form = await postForm('customer=ada&items[0][sku]=A&items[0][quantity]=2&tags=x', {
      'idempotency-key': 'k1',
    });
    expect(form.statusCode).toBe(201);
    expect(form.headers['idempotent-replayed']).toBe('true');
    expect(form.body).toBe(json.body);
    expect(runs()).toBe(1);
  });

  it('still tells a different form body apart from the JSON under the same key (422 reuse)', async () => {
    await build(true);
    await app.inject({
      method: 'POST',
      url: '/orders',
      payload: { customer: 'ada', items: [{ sku: 'A', quantity: 2 }] },
      headers: { 'idempotency-key': 'k1' },
    });
    const form = await postForm('customer=ada&items[0][sku]=A&items[0][quantity]=3', {
      'idempotency-key': 'k1',
    });
    expect(form.statusCode).toBe(422);
    expect((form.json() as { type: string }).type).toBe(`${problemTypePrefix}idempotency-key-reuse`);
  });
});
