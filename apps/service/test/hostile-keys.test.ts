// Hostile Idempotency-Key headers (issue 5): invalid values and repeated headers are 400 and
// create nothing; odd but valid shapes execute once and replay, bare and quoted being one key.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeExchange, stripControls, utf8AsLatin1 } from './helpers/raw-http.js';
import {
  type BodyRoute,
  bodyRequest,
  freshKey,
  hostileService,
  problemOf,
  problemPrefix,
  unicodeTextArb,
  validOrderArb,
  validUserArb,
} from './hostile-support.js';

const hostile = hostileService();

describe('hostile Idempotency-Key headers (SQLite)', () => {
  it('invalid Idempotency-Key values: 400 idempotency-key-invalid, nothing created', async () => {
    const tokenChar = fc.constantFrom(...'abcXYZ019-_.~!#$%&*+^`|:;<=>?@[]/{}'.split(''));
    const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 20 });
    const invalidKey = fc.oneof(
      fc.constantFrom('', '   ', '""', '"', '"abc', '"abc"def"', '"a\\nb"'),
      fc.string({ unit: tokenChar, minLength: 256, maxLength: 3000 }),
      fc.tuple(token, token).map(([a, b]) => `${a},${b}`),
      fc.tuple(token, token).map(([a, b]) => `${a} ${b}`),
      fc.tuple(token, token).map(([a, b]) => `${a}\t${b}`),
      fc
        .tuple(token, fc.integer({ min: 0x80, max: 0xff }), token)
        .map(([a, c, b]) => `${a}${String.fromCharCode(c)}${b}`),
      fc
        .tuple(
          token,
          unicodeTextArb.filter((t) => /[^\x20-\x7e]/.test(t) && stripControls(t) === t),
        )
        .map(([a, text]) => `${a}${utf8AsLatin1(text)}`),
      token.map((t) => `"${t}\\"`),
      token.map((t) => `"${t}\\x"`),
      token.map((t) => `"${t}"${t}"`),
    );
    const route = fc.constantFrom<BodyRoute>('POST /users', 'POST /orders');
    await hostile.check(
      'invalid Idempotency-Key',
      fc.tuple(route, invalidKey, validUserArb, validOrderArb),
      250,
      async ([r, key, u, o]) => {
        const body = JSON.stringify(r === 'POST /users' ? u : o);
        const request = bodyRequest(r, body);
        const headers = (request.headers ?? []).filter(([name]) => name !== 'Idempotency-Key');
        const sent = await hostile.send({ ...request, headers: [...headers, ['Idempotency-Key', key]] });
        const answer = hostile.expectAnswer(sent, [400]);
        expect(problemOf(answer).type, describeExchange(sent)).toBe(
          `${problemPrefix}idempotency-key-invalid`,
        );
      },
    );
  });

  it('a repeated Idempotency-Key header is 400 "sent more than once", even with equal values', async () => {
    const token = fc.stringMatching(/^[A-Za-z0-9-]{1,40}$/);
    const copies = fc.oneof(
      fc.array(token, { minLength: 2, maxLength: 4 }),
      fc.tuple(token, fc.integer({ min: 2, max: 4 })).map(([t, n]) => Array<string>(n).fill(t)),
    );
    const route = fc.constantFrom<BodyRoute>('POST /users', 'POST /orders');
    await hostile.check(
      'repeated Idempotency-Key',
      fc.tuple(route, copies, validUserArb),
      150,
      async ([r, keys, user]) => {
        const body = JSON.stringify(
          r === 'POST /users'
            ? user
            : { items: [{ sku: 'a', quantity: 1, unitPriceCents: 1 }], currency: 'EUR' },
        );
        const request = bodyRequest(r, body);
        const headers = (request.headers ?? []).filter(([name]) => name !== 'Idempotency-Key');
        const sent = await hostile.send({
          ...request,
          headers: [...headers, ...keys.map((k): [string, string] => ['Idempotency-Key', k])],
        });
        const answer = hostile.expectAnswer(sent, [400]);
        expect(problemOf(answer).detail, describeExchange(sent)).toContain('more than once');
      },
    );
  });

  it('odd but valid Idempotency-Key shapes execute once and replay (bare and quoted are one key)', async () => {
    const printable = fc.constantFrom(
      ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).filter((c) => c !== ','),
    );
    const shape = fc.oneof(
      fc.string({ unit: printable, minLength: 1, maxLength: 230 }).map((k) => ({ key: k, quoted: true })),
      fc
        .string({ unit: printable, minLength: 1, maxLength: 230 })
        .filter((k) => !/[\s"]/.test(k))
        .map((k) => ({ key: k, quoted: false })),
    );
    await hostile.check(
      'valid Idempotency-Key shapes',
      fc.tuple(shape, validOrderArb),
      60,
      async ([{ key: generated, quoted }, order]) => {
        const key = `${freshKey()}${generated}`.slice(0, 255);
        const asHeader = (k: string) => (quoted ? `"${k.replace(/[\\"]/g, (c) => `\\${c}`)}"` : k);
        const body = JSON.stringify(order);
        const post = (header: string, text = body) =>
          hostile.send({
            method: 'POST',
            target: '/orders',
            headers: [
              ['Content-Type', 'application/json'],
              ['Idempotency-Key', header],
            ],
            body: text,
          });
        const first = hostile.expectAnswer(await post(asHeader(key)), [201]);
        const again = hostile.expectAnswer(await post(asHeader(key)), [201]);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(again.body).toBe(first.body);
        if (!quoted) {
          const sameAsQuoted = hostile.expectAnswer(
            await post(`"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`),
            [201],
          );
          expect(sameAsQuoted.body).toBe(first.body);
        }
        const reuse = hostile.expectAnswer(
          await post(asHeader(key), JSON.stringify({ ...order, note: 'other' })),
          [422],
        );
        expect(problemOf(reuse).type).toBe(`${problemPrefix}idempotency-key-reuse`);
      },
    );
  });
});
