// Hostile request bodies (issue 5): malformed, truncated, deeply nested and oversized JSON and
// form bodies, and media types the routes do not take. Every answer is a 4xx problem+json unless
// the input was valid (the rules and the per-case checks are in hostile-support.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeExchange } from './helpers/raw-http.js';
import {
  bodyLimit,
  bodyRequest,
  bodyRouteArb,
  hostileService,
  problemOf,
  problemPrefix,
  validOrderArb,
  validUserArb,
} from './hostile-support.js';

const hostile = hostileService();

describe('hostile request bodies (SQLite)', () => {
  it('malformed JSON bodies: 400 (or 422 when the mangled text still parses), never 5xx', async () => {
    const fixture = await hostile.createFixture();
    const mangle = fc.oneof(
      // A valid document with one character inserted, replaced or removed.
      fc
        .tuple(fc.oneof(validUserArb, validOrderArb), fc.nat(), fc.constantFrom(...'{}[]":,\\\'tfn0-+.eE '))
        .chain(([doc, at, char]) => {
          const text = JSON.stringify(doc);
          const i = at % text.length;
          return fc.constantFrom(
            text.slice(0, i) + char + text.slice(i),
            text.slice(0, i) + char + text.slice(i + 1),
            text.slice(0, i) + text.slice(i + 1),
          );
        }),
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.constantFrom(
        '{"__proto__":{"admin":true},"username":"abc","email":"a@b.co"}',
        '{"username":"abc","email":"a@b.co","constructor":{"prototype":{"admin":true}}}',
        '{"username":"abc","email":"a@b.co",}',
        "{'username':'abc'}",
        '{"username":"abc" /* c */}',
        '{"username":"a\u0001b","email":"a@b.co"}',
        '{"username":"abc","email":"a@b.co","age":NaN}',
        '{"username":"abc","email":"a@b.co","age":1e400}',
        '{"username":"abc","email":"a@b.co","age":9007199254740993}',
        '{"username":"abc","email":"a@b.co","age":-0}',
        '{"username":"abc","email":"a@b.co"}{"x":1}',
        '{"items":[{"sku":"a","quantity":1,"unitPriceCents":1}],"currency":"EUR"}]',
        '[]',
        'null',
        '"just a string"',
        '\u0000',
        '{"a":"\\ud800"}',
        '{"a":"\\u12"}',
      ),
    );
    await hostile.check(
      'malformed JSON bodies',
      fc.tuple(bodyRouteArb, mangle),
      300,
      async ([route, text]) => {
        // A stale If-Match on PUT: if the mangled text happens to be a valid user, 412, not a change.
        const sent = await hostile.send(bodyRequest(route, text, { fixture, ifMatch: '"stale"' }));
        const creates = route === 'PUT /users/{fixture}' ? [] : [201, 409];
        const answer = hostile.expectAnswer(sent, [400, 412, 422, ...creates]);
        if (answer.status === 400) expect(problemOf(answer).type).toBe(`${problemPrefix}bad-request`);
      },
    );
  });

  it('truncated JSON bodies (a strict prefix of a valid one) are 400 on every body route', async () => {
    const fixture = await hostile.createFixture();
    const truncated = fc
      .tuple(bodyRouteArb, fc.oneof(validUserArb, validOrderArb), fc.nat())
      .map(([route, doc, at]) => {
        const text = JSON.stringify(doc);
        return [route, text.slice(0, at % text.length)] as const;
      });
    await hostile.check('truncated JSON bodies', truncated, 250, async ([route, text]) => {
      hostile.expectAnswer(await hostile.send(bodyRequest(route, text, { fixture })), [400]);
    });
  });

  it('wrong, missing and odd content types: 415 or a parse/validation 4xx, 2xx only for valid input', async () => {
    const fixture = await hostile.createFixture();
    const unknownTypes = [
      'text/plain',
      'application/xml',
      'text/html',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      'application/merge-patch+json',
      'application/jsonx',
      'image/png',
    ];
    const contentTypeArb = fc.oneof(
      fc.constantFrom(
        undefined,
        '',
        ';',
        '/',
        'json',
        'application/',
        '/json',
        'application/json;',
        'application/json; charset=utf-8',
        'APPLICATION/JSON',
        'Application/Json; Charset=UTF-8',
        'application/json; charset=latin1',
        'application/json;;;',
        'application/json, text/plain',
        'application/x-www-form-urlencoded',
        'application/x-www-form-urlencoded; charset=utf-8',
        '*/*',
        'application/*',
        ...unknownTypes,
      ),
      fc.string({ maxLength: 60 }),
      fc
        .tuple(fc.stringMatching(/^[a-z+.-]{1,12}$/), fc.stringMatching(/^[a-z+.-]{1,12}$/), fc.string())
        .map(([type, sub, params]) => `${type}/${sub}; ${params}`),
    );
    const bodyArb = fc.oneof(
      validUserArb.map((u) => JSON.stringify(u)),
      validOrderArb.map((o) => JSON.stringify(o)),
      validUserArb.map((u) => new URLSearchParams({ username: u.username, email: u.email }).toString()),
      fc.string({ maxLength: 40 }),
    );
    await hostile.check(
      'content types',
      fc.tuple(bodyRouteArb, contentTypeArb, bodyArb),
      300,
      async ([route, type, body]) => {
        const sent = await hostile.send(
          bodyRequest(route, body, { fixture, contentType: type, ifMatch: '"stale"' }),
        );
        const creates = route === 'PUT /users/{fixture}' ? [] : [201, 409];
        const answer = hostile.expectAnswer(sent, [400, 412, 415, 422, ...creates]);
        if (route !== 'PUT /users/{fixture}' && type !== undefined && unknownTypes.includes(type)) {
          expect(answer.status, describeExchange(sent)).toBe(415);
        }
      },
    );
  });

  it('deeply nested JSON and form bodies: 422 (413 past the size limit), never a stack overflow', async () => {
    const fixture = await hostile.createFixture();
    const nested = fc.record({
      route: bodyRouteArb,
      depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1000, max: 250_000 })),
      shape: fc.constantFrom('array', 'object', 'constructor', 'form'),
      field: fc.constantFrom('root', 'username', 'bio', 'interests', 'items', 'note'),
    });
    await hostile.check('deeply nested bodies', nested, 120, async ({ route, depth, shape, field }) => {
      let body: string;
      let contentType = 'application/json';
      if (shape === 'form') {
        body = `${field === 'root' ? 'a' : field}${'[x]'.repeat(Math.min(depth, 200_000))}=1&username=abc`;
        contentType = 'application/x-www-form-urlencoded';
      } else {
        const open = shape === 'array' ? '[' : shape === 'object' ? '{"a":' : '{"constructor":';
        const close = shape === 'array' ? ']' : '}';
        const value = `${open.repeat(depth)}1${close.repeat(depth)}`;
        body = field === 'root' ? value : `{"username":"abc","email":"a@b.co","${field}":${value}}`;
      }
      const sent = await hostile.send(bodyRequest(route, body, { fixture, contentType }));
      const expected = Buffer.byteLength(body) > bodyLimit ? 413 : shape === 'constructor' ? 400 : 422;
      const answer = hostile.expectAnswer(sent, [400, 413, 422]);
      // `constructor` keys may be refused as prototype poisoning (400) or by the schema (422).
      if (expected !== 400) expect(answer.status, describeExchange(sent)).toBe(expected);
    });
  });

  it('bodies around and past the 1 MiB limit: 413 problem+json past it, JSON and form, honest or chunked', async () => {
    const fixture = await hostile.createFixture();
    const sized = fc.record({
      route: bodyRouteArb,
      size: fc.oneof(
        fc.integer({ min: bodyLimit - 64, max: bodyLimit + 64 }),
        fc.integer({ min: bodyLimit + 1, max: 3 * bodyLimit }),
      ),
      kind: fc.constantFrom('json', 'form'),
      framing: fc.constantFrom('content-length', 'chunked'),
    });
    await hostile.check('oversized bodies', sized, 40, async ({ route, size, kind, framing }) => {
      const prefix = kind === 'json' ? '{"username":"abc","email":"a@b.co","bio":"' : 'username=abc&bio=';
      const suffix = kind === 'json' ? '"}' : '';
      const filler = Math.max(0, size - prefix.length - suffix.length);
      const body = Buffer.from(prefix + 'x'.repeat(filler) + suffix);
      const contentType = kind === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
      const request = bodyRequest(route, body, { fixture, contentType });
      const sent =
        framing === 'chunked'
          ? await hostile.send({
              ...request,
              contentLength: 'omit',
              headers: [...(request.headers ?? []), ['Transfer-Encoding', 'chunked']],
              body: Buffer.concat([
                Buffer.from(`${body.length.toString(16)}\r\n`),
                body,
                Buffer.from('\r\n0\r\n\r\n'),
              ]),
            })
          : await hostile.send(request);
      // Under the limit these bodies parse, and fail the schema (bio over 2000 characters).
      const answer = hostile.expectAnswer(sent, [body.length > bodyLimit ? 413 : 422]);
      if (answer.status === 413) {
        expect(problemOf(answer)).toMatchObject({ type: `${problemPrefix}content-too-large` });
        expect(problemOf(answer).detail).toContain(String(bodyLimit));
      }
    });
  });

  // Regression: Fastify's default text/plain parser handed a text body to the schema as a
  // string, so a media type the route does not take was 422 "must be object", not 415.
  it('answers a text/plain body with 415, not 422', async () => {
    const sent = await hostile.send(
      bodyRequest('POST /users', '{"username":"plain_text","email":"p@example.com"}', {
        contentType: 'text/plain',
      }),
    );
    expect(problemOf(hostile.expectAnswer(sent, [415])).type).toBe(`${problemPrefix}unsupported-media-type`);
  });
});
