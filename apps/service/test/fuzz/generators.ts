// The generators of hostile input, shared by the hostile-*.test.ts suite (through
// hostile-support.ts) and the long fuzz run (fuzz/run.ts): values, texts, keys and body requests.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  type Answer,
  percentEncode,
  type RawRequest,
  stripControls,
  utf8AsLatin1,
} from '../helpers/raw-http.js';

/** The suite's fixed seed, so a failure reproduces; fast-check's default shrinking then finds a small input. */
export const seed = 20_251_123;
/** The service's body limit (apps/service/src/app.ts defaultBodyLimitBytes). */
export const bodyLimit = 1024 * 1024;
export const problemPrefix = 'urn:retrysafe:problem:';
/** Statuses of refusals made before the handler ran: none of them may be stored as a response. */
export const refusalStatuses = [400, 413, 414, 415, 422, 431];

// ---------------------------------------------------------------------------------------------
// Generators.

export const usernameArb = fc.stringMatching(/^[a-z0-9_]{3,32}$/);
export const validUserArb = fc.record(
  {
    username: usernameArb,
    email: fc.constantFrom('a@example.com', 'x.y@example.org', 'q+z@sub.example.net'),
    age: fc.integer({ min: 0, max: 150 }),
    bio: fc.string({ maxLength: 80 }),
    interests: fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 4 }),
  },
  { requiredKeys: ['username', 'email'] },
);
export const validOrderArb = fc.record(
  {
    items: fc.array(
      fc.record({
        sku: fc.string({ minLength: 1, maxLength: 20 }),
        quantity: fc.integer({ min: 1, max: 10_000 }),
        // At most 4 × 10,000 × 25,000: every valid order stays within one charge (10^9 cents).
        unitPriceCents: fc.integer({ min: 0, max: 25_000 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    currency: fc.constantFrom('EUR', 'USD', 'JPY'),
    note: fc.string({ maxLength: 40 }),
  },
  { requiredKeys: ['items', 'currency'] },
);

/** Characters that break parsers, storage or comparisons. */
const nastyChars = [
  '\u0000',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\ufeff',
  '\u202e',
  '\u200d',
  '\u0301',
  '\u2028',
  '\u2029',
  '\uffff',
  '\ufffe',
  '\u0085',
  '\u001b',
  '\u007f',
  '\t',
  '\n',
  '"',
  '\\',
  '/',
  '%',
  '😀',
  '👩‍👩‍👧',
  'e\u0301',
  'ﷺ',
  String.fromCodePoint(0x10ffff),
  String.fromCodePoint(0xe0001),
];
export const unicodeTextArb = fc
  .array(fc.oneof(fc.constantFrom(...nastyChars), fc.string({ unit: 'binary', maxLength: 4 })), {
    maxLength: 24,
  })
  .map((parts) => parts.join(''));

/** Text the service must refuse (422 in a body, 400 elsewhere): NUL or a lone surrogate. */
export function isUnstorable(text: string): boolean {
  return text.includes('\u0000') || /\p{Cs}/u.test(text);
}

export type BodyRoute = 'POST /users' | 'POST /orders' | 'PUT /users/{fixture}';
export const bodyRouteArb = fc.constantFrom<BodyRoute>('POST /users', 'POST /orders', 'PUT /users/{fixture}');

/** A key no other request uses (random, so no case depends on how many keys ran before it). */
export function freshKey(): string {
  return `hostile-${randomBytes(6).toString('hex')}`;
}

/** A user a case created for itself; the per-case check asserts that nothing changed it. */
export interface Fixture {
  id: string;
  username: string;
  etag: string;
  /** The representation as created. */
  text: string;
}

/**
 * A request to a body route. `PUT /users/{fixture}` needs `fixture` and carries its current
 * ETag unless `ifMatch` says otherwise; `POST /orders` gets a fresh Idempotency-Key.
 */
export function bodyRequest(
  route: BodyRoute,
  body: Buffer | string,
  extra: Partial<RawRequest> & { contentType?: string | undefined; ifMatch?: string; fixture?: Fixture } = {},
): RawRequest {
  const { contentType = 'application/json', fixture, ifMatch = fixture?.etag, ...rest } = extra;
  const headers: [string, string][] = [];
  if (contentType !== undefined) headers.push(['Content-Type', contentType]);
  if (route === 'POST /orders') headers.push(['Idempotency-Key', freshKey()]);
  if (route === 'PUT /users/{fixture}') {
    if (fixture === undefined || ifMatch === undefined) throw new Error(`${route} needs a fixture`);
    headers.push(['If-Match', ifMatch]);
  }
  const [method, path] = route.split(' ') as [string, string];
  return {
    method,
    target: fixture === undefined ? path : path.replace('{fixture}', fixture.id),
    body,
    ...rest,
    headers: [...headers, ...(rest.headers ?? [])],
  };
}

export function problemOf(answer: Answer): { type: string; detail: string; errors?: { pointer: string }[] } {
  return JSON.parse(answer.body);
}

/** Where the unicode cases put hostile text: path, query and header places of the routes. */
export const unicodePlaces = [
  'path-encoded',
  'path-raw',
  'cursor',
  'limit',
  'if-match',
  'if-none-match',
  'authorization',
  'prefer',
  'accept',
  'x-retry-count',
  'content-type',
] as const;
export type UnicodePlace = (typeof unicodePlaces)[number];

/**
 * The request that puts `value` at `where` (a header place reads the fixture user), and the
 * statuses it may answer. Shared by the hostile suite and the long fuzz run.
 */
export function unicodePlacement(
  where: UnicodePlace,
  value: string,
  fixtureId: string,
): { request: RawRequest; allowed: number[] } {
  const headerSafe = stripControls(utf8AsLatin1(value));
  switch (where) {
    case 'path-encoded':
      return { request: { target: `/users/${percentEncode(value)}` }, allowed: [400, 404, 414] };
    case 'path-raw':
      return {
        request: { target: `/orders/${utf8AsLatin1(value).replace(/[\s?#/]/g, '')}x` },
        allowed: [400, 404, 414],
      };
    case 'cursor':
      return { request: { target: `/users?cursor=${percentEncode(value)}` }, allowed: [400, 404, 414] };
    case 'limit':
      return { request: { target: `/orders?limit=${percentEncode(value)}` }, allowed: [200, 400] };
    case 'authorization':
      return { request: { target: '/users', token: headerSafe }, allowed: [401] };
    case 'content-type':
      return {
        request: bodyRequest('POST /users', '{}', { contentType: headerSafe }),
        allowed: [400, 415, 422],
      };
    default:
      return {
        request: { target: `/users/${fixtureId}`, headers: [[where, headerSafe]] },
        allowed: [200, 304],
      };
  }
}
