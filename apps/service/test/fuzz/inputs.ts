// The long fuzz run's inputs: one category per route of the reference service (users, orders,
// operations, unknown paths and methods) plus the framing and text attacks that cross them, each
// a fast-check arbitrary and a run that sends it and checks every answer. Built on the suite's
// generators (generators.ts); the answer rules and the ledger are checks.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import {
  type Answer,
  type Exchange,
  percentEncode,
  type RawRequest,
  stripControls,
  utf8AsLatin1,
} from '../helpers/raw-http.js';
import { type AnswerRules, HostileCheckError } from './checks.js';
import {
  type BodyRoute,
  bodyLimit,
  bodyRequest,
  bodyRouteArb,
  type Fixture,
  freshKey,
  isUnstorable,
  problemPrefix,
  unicodePlacement,
  unicodePlaces,
  unicodeTextArb,
  usernameArb,
  validOrderArb,
  validUserArb,
} from './generators.js';

/** What a run may do: send, check an answer (and note what it created or deleted). */
export interface FuzzIo {
  send(request: RawRequest): Promise<Exchange>;
  sendBytes(bytes: Buffer, head: boolean, afterWrite: 'wait' | 'end' | 'abort'): Promise<Answer | undefined>;
  /** checkAnswer, then notes a 201/303's row in the ledger. */
  expect(exchange: Exchange, allowed: readonly number[], rules?: AnswerRules): Answer;
  /** A 204 DELETE removed this row. */
  noteDeleted(table: 'users' | 'orders', id: string): void;
  /** A user made for the running round; nothing may change it. */
  readonly fixture: Fixture;
}

/** One generated input: its category's name and the generated value (printed as a counterexample). */
export interface FuzzInput {
  category: string;
  value: unknown;
}

export interface FuzzCategory {
  name: string;
  /** Relative share of the generated inputs. */
  weight: number;
  arbitrary: fc.Arbitrary<FuzzInput>;
  run(value: unknown, io: FuzzIo): Promise<void>;
}

function category<T>(
  name: string,
  weight: number,
  arbitrary: fc.Arbitrary<T>,
  run: (value: T, io: FuzzIo) => Promise<void>,
): FuzzCategory {
  return {
    name,
    weight,
    arbitrary: arbitrary.map((value): FuzzInput => ({ category: name, value })),
    run: (value, io) => run(value as T, io),
  };
}

function must(condition: boolean, what: string, exchange: Exchange): void {
  if (!condition) throw new HostileCheckError(what, exchange);
}

// ---------------------------------------------------------------------------------------------
// Shared pieces.

type Token = 'writer-a' | 'writer-b' | 'reader-a' | 'none' | 'bogus';
/** Mostly a writer; sometimes a reader (403 on writes), no key or an unknown one (401). */
const tokenArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom<Token>('writer-a', 'writer-b') },
  { weight: 1, arbitrary: fc.constantFrom<Token>('reader-a', 'none', 'bogus') },
);
const tokenOf = (token: Token): string | false =>
  token === 'none' ? false : token === 'bogus' ? 'no-such-key' : `demo-${token}`;
/** What auth answers before anything else, or undefined when the request goes through. */
const authRefusal = (token: Token, write: boolean): number | undefined =>
  token === 'none' || token === 'bogus' ? 401 : token === 'reader-a' && write ? 403 : undefined;

/** A valid JSON text with one character inserted, replaced or removed (it may still parse). */
const mangledArb = fc
  .tuple(fc.oneof(validUserArb, validOrderArb), fc.nat(), fc.constantFrom(...'{}[]":,\\\'tfn0-+.eE '))
  .chain(([doc, at, char]) => {
    const text = JSON.stringify(doc);
    const i = at % text.length;
    return fc.constantFrom(
      text.slice(0, i) + char + text.slice(i),
      text.slice(0, i) + char + text.slice(i + 1),
      text.slice(0, i) + text.slice(i + 1),
    );
  });
const truncatedArb = fc
  .tuple(fc.oneof(validUserArb, validOrderArb), fc.nat())
  .map(([doc, at]) => JSON.stringify(doc).slice(0, at % JSON.stringify(doc).length));
const oddContentTypeArb = fc.oneof(
  fc.constantFrom(
    undefined,
    '',
    'json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/json;;;',
    'application/x-www-form-urlencoded',
    'text/plain',
    'application/xml',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    '*/*',
  ),
  fc.string({ maxLength: 40 }),
);
/** A body for a user or order route: mostly valid, else broken in one of several ways. */
function bodyArb(valid: fc.Arbitrary<Record<string, unknown>>) {
  return fc.oneof(
    { weight: 4, arbitrary: valid.map((doc) => ({ kind: 'valid' as const, text: JSON.stringify(doc) })) },
    { weight: 2, arbitrary: mangledArb.map((text) => ({ kind: 'mangled' as const, text })) },
    { weight: 1, arbitrary: truncatedArb.map((text) => ({ kind: 'truncated' as const, text })) },
    {
      weight: 1,
      arbitrary: fc
        .string({ unit: 'binary', maxLength: 60 })
        .map((text) => ({ kind: 'junk' as const, text })),
    },
  );
}
/** A user document with generated (possibly unstorable) text in one field. */
const userWithTextArb = fc
  .tuple(usernameArb, fc.constantFrom('bio', 'interests', 'username'), unicodeTextArb)
  .map(([name, field, text]) => {
    const user: Record<string, unknown> = { username: name, email: `${name}@example.com` };
    if (field === 'bio') user.bio = text;
    if (field === 'interests') user.interests = [text];
    if (field === 'username') user.username = text;
    return { user, unstorable: isUnstorable(text) };
  });

const oddIdArb = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }).map(percentEncode),
  fc.string({ minLength: 1, maxLength: 30 }).map((s) => s.replace(/[\s?#/%]/g, '') || 'x'),
  fc.constantFrom('..', '.', '%2e%2e', '%2F', 'a%2Fb', '%00', 'a%00', '%', '%Z1', '%C3', '%ED%A0%80', '%FF'),
  fc.integer({ min: 65, max: 100 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 101, max: 8000 }).map((n) => 'b'.repeat(n)),
  fc.uuid(),
);
const queryArb = fc.oneof(
  fc
    .array(
      fc.oneof(
        fc.tuple(
          fc.constantFrom('limit', 'cursor', 'Limit', '__proto__', 'constructor', 'limit[]', 'cursor[a]', ''),
          fc.oneof(fc.string({ maxLength: 20 }), fc.integer({ min: -5, max: 500 }).map(String)),
        ),
        fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })),
      ),
      { maxLength: 6 },
    )
    .map((pairs) => pairs.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&')),
  fc.string({ maxLength: 40 }).map((s) => s.replace(/[\s#]/g, '')),
  unicodeTextArb.map((text) => `cursor=${percentEncode(text)}`),
  fc.integer({ min: 100, max: 3000 }).map((n) => Array.from({ length: n }, (_, i) => `limit=${i}`).join('&')),
);
/** An If-Match / If-None-Match value: generated text, or one made from the fixture's ETag at run time. */
type EtagSpec = { text: string } | { fromFixture: 'weak' | 'bare' | 'broken' };
const etagSpecArb: fc.Arbitrary<EtagSpec> = fc.oneof(
  fc.string({ maxLength: 12 }).map((t) => ({ text: `"${t}"` })),
  fc.string({ maxLength: 12 }).map((t) => ({ text: `W/"${t}"` })),
  fc.string({ maxLength: 12 }).map((text) => ({ text })),
  fc
    .constantFrom('W/', '"', '""', 'W/""', '"a" "b"', '"a",,"b"', ',', 'W/ "a"', 'w/"a"', '"stale"')
    .map((text) => ({ text })),
  fc
    .constantFrom('weak' as const, 'bare' as const, 'broken' as const)
    .map((fromFixture) => ({ fromFixture })),
);
/** The header value of `spec`; never one that matches the fixture's current ETag strongly. */
function etagValue(spec: EtagSpec, fixture: Fixture): string {
  if ('fromFixture' in spec) {
    const etag = fixture.etag;
    return spec.fromFixture === 'weak'
      ? `W/${etag}`
      : spec.fromFixture === 'bare'
        ? etag.slice(1, -1)
        : `${etag} x`;
  }
  const matches = spec.text.trim() === '*' || spec.text.split(',').some((t) => t.trim() === fixture.etag);
  return matches ? '"stale"' : spec.text;
}
/** What auth and routing allow when `token` is refused: 401/403, or 400/414 for an id refused first. */
const refusedOr = (refused: number, oddId: boolean): number[] => (oddId ? [refused, 400, 414] : [refused]);

const json = 'application/json';
/** Creates a user of this input's own (to replace, delete or read); answers its id and ETag. */
async function ownUser(
  io: FuzzIo,
  token: string | false,
): Promise<{ id: string; etag: string; text: string }> {
  const sent = await io.send({
    method: 'POST',
    target: '/users',
    token,
    headers: [['Content-Type', json]],
    body: JSON.stringify({ username: `own_${randomBytes(8).toString('hex')}`, email: 'own@example.com' }),
  });
  const answer = io.expect(sent, [201]);
  const { id } = JSON.parse(answer.body) as { id: string };
  return { id, etag: answer.headers.etag!, text: answer.body };
}

// ---------------------------------------------------------------------------------------------
// Users.

const createUser = category(
  'users: create (POST /users)',
  12,
  fc.record({
    token: tokenArb,
    body: fc.oneof(
      { weight: 3, arbitrary: bodyArb(validUserArb) },
      {
        weight: 1,
        arbitrary: userWithTextArb.map(({ user, unstorable }) => ({
          kind: unstorable ? ('unstorable' as const) : ('valid' as const),
          text: JSON.stringify(user),
        })),
      },
      {
        weight: 1,
        arbitrary: validUserArb.map((u) => ({
          kind: 'form' as const,
          text: new URLSearchParams({ username: u.username, email: u.email }).toString(),
        })),
      },
    ),
    contentType: fc.oneof(
      { weight: 4, arbitrary: fc.constant('json') },
      { weight: 1, arbitrary: oddContentTypeArb },
    ),
    key: fc.constantFrom('none', 'fresh', 'fresh', 'invalid'),
    prefer: fc.constantFrom(undefined, 'return=minimal', 'return=representation'),
  }),
  async ({ token, body, contentType, key, prefer }, io) => {
    const type =
      contentType === 'json'
        ? body.kind === 'form'
          ? 'application/x-www-form-urlencoded'
          : json
        : contentType;
    const headers: [string, string][] = [];
    if (type !== undefined) headers.push(['Content-Type', type]);
    if (key === 'fresh') headers.push(['Idempotency-Key', freshKey()]);
    if (key === 'invalid') headers.push(['Idempotency-Key', 'a b']);
    if (prefer) headers.push(['Prefer', prefer]);
    const request: RawRequest = {
      method: 'POST',
      target: '/users',
      token: tokenOf(token),
      headers,
      body: body.text,
    };
    const sent = await io.send(request);
    const refused = authRefusal(token, true);
    if (refused !== undefined) return void io.expect(sent, [refused]);
    const answer = io.expect(sent, [201, 400, 409, 415, 422]);
    if (key === 'invalid' && contentType === 'json')
      must(answer.status === 400, 'an invalid Idempotency-Key was not 400', sent);
    if (
      contentType === 'json' &&
      key !== 'invalid' &&
      (body.kind === 'truncated' || body.kind === 'unstorable')
    )
      must(
        answer.status === (body.kind === 'truncated' ? 400 : 422),
        `a ${body.kind} body was not refused`,
        sent,
      );
    if (key === 'fresh' && (answer.status === 201 || answer.status === 409)) {
      // The same key and body again: the same answer, replayed.
      const again = await io.send(request);
      const replay = io.expect(again, [answer.status]);
      must(replay.body === answer.body, 'a replay differs from the first answer', again);
      if (answer.status === 201)
        must(replay.headers['idempotent-replayed'] === 'true', 'no Idempotent-Replayed', again);
    }
  },
);

const readUser = category(
  'users: read (GET /users/{id})',
  8,
  fc.record({
    target: fc.oneof(fc.constant('fixture'), fc.constant('own'), oddIdArb),
    ifNoneMatch: fc.option(etagSpecArb),
    method: fc.constantFrom('GET', 'GET', 'HEAD'),
    token: tokenArb,
  }),
  async ({ target, ifNoneMatch, method, token }, io) => {
    let id = target;
    let expected: { etag: string; text: string } | undefined;
    if (target === 'fixture') {
      id = io.fixture.id;
      expected = io.fixture;
    } else if (target === 'own' && authRefusal(token, true) === undefined) {
      const own = await ownUser(io, tokenOf(token));
      id = own.id;
      expected = own;
    }
    const inm = ifNoneMatch === null ? null : etagValue(ifNoneMatch, io.fixture);
    const headers: [string, string][] = inm === null ? [] : [['If-None-Match', inm]];
    const sent = await io.send({ method, target: `/users/${id}`, headers, token: tokenOf(token) });
    const refused = authRefusal(token, false);
    if (refused !== undefined) return void io.expect(sent, refusedOr(refused, expected === undefined));
    // The fixture belongs to tenant a: to tenant b it is an id nobody has.
    const visible = expected !== undefined && (target === 'own' || token !== 'writer-b');
    const answer = io.expect(sent, visible ? [200, 304] : [400, 404, 414]);
    if (visible && answer.status === 200 && method === 'GET')
      must(answer.body === expected!.text && answer.headers.etag === expected!.etag, 'a read differs', sent);
    if (visible && answer.status === 304)
      must(inm?.includes(expected!.etag) === true, 'a 304 without a match', sent);
  },
);

const replaceUser = category(
  'users: replace (PUT /users/{id})',
  10,
  fc.record({
    how: fc.constantFrom('stale', 'missing', 'if-none-match-on-existing', 'create', 'own', 'odd-id'),
    ifMatch: etagSpecArb,
    oddId: oddIdArb,
    body: fc.oneof(
      { weight: 3, arbitrary: bodyArb(validUserArb) },
      {
        weight: 1,
        arbitrary: userWithTextArb.map(({ user, unstorable }) => ({
          kind: unstorable ? ('unstorable' as const) : ('valid' as const),
          text: JSON.stringify(user),
        })),
      },
    ),
    token: tokenArb,
    prefer: fc.constantFrom(undefined, 'return=minimal'),
  }),
  async ({ how, ifMatch, oddId, body, token, prefer }, io) => {
    const headers: [string, string][] = [['Content-Type', json]];
    if (prefer) headers.push(['Prefer', prefer]);
    const refused = authRefusal(token, true);
    let id = io.fixture.id;
    let allowed: number[];
    if (how === 'stale') {
      headers.push(['If-Match', etagValue(ifMatch, io.fixture)]);
      allowed = token === 'writer-b' ? [400, 404, 412, 422] : [400, 412, 422];
    } else if (how === 'missing') {
      allowed = token === 'writer-b' ? [400, 404, 412, 422, 428] : [400, 422, 428];
    } else if (how === 'if-none-match-on-existing') {
      headers.push(['If-None-Match', '*']);
      allowed = token === 'writer-b' ? [201, 400, 409, 412, 422] : [400, 412, 422];
      if (token === 'writer-b') id = randomUUID(); // tenant b cannot see a's fixture: use a fresh id
    } else if (how === 'create') {
      id = randomUUID();
      headers.push(['If-None-Match', '*']);
      allowed = [201, 400, 409, 415, 422];
    } else if (how === 'own') {
      if (refused === undefined) {
        const own = await ownUser(io, tokenOf(token));
        id = own.id;
        headers.push(['If-Match', own.etag]);
      }
      allowed = [200, 204, 400, 409, 422];
    } else {
      id = oddId;
      headers.push(['If-Match', '"stale"']);
      allowed = [400, 404, 412, 414, 422, 428];
    }
    const sent = await io.send({
      method: 'PUT',
      target: `/users/${id}`,
      token: tokenOf(token),
      headers,
      body: body.text,
    });
    if (refused !== undefined) return void io.expect(sent, refusedOr(refused, how === 'odd-id'));
    const answer = io.expect(sent, allowed);
    if (how === 'create' && answer.status === 201)
      must(answer.headers.location === `/users/${id}`, 'a create-by-PUT elsewhere', sent);
  },
);

const deleteUser = category(
  'users: delete (DELETE /users/{id})',
  6,
  fc.record({
    how: fc.constantFrom('stale', 'missing', 'own', 'own', 'odd-id', 'unknown'),
    ifMatch: etagSpecArb,
    oddId: oddIdArb,
    token: tokenArb,
  }),
  async ({ how, ifMatch, oddId, token }, io) => {
    const refused = authRefusal(token, true);
    const headers: [string, string][] = [];
    let id = io.fixture.id;
    let allowed: number[];
    if (how === 'stale') {
      headers.push(['If-Match', etagValue(ifMatch, io.fixture)]);
      allowed = token === 'writer-b' ? [404, 412] : [412];
    } else if (how === 'missing') allowed = token === 'writer-b' ? [404, 412, 428] : [428];
    else if (how === 'own' && refused === undefined) {
      const own = await ownUser(io, tokenOf(token));
      id = own.id;
      headers.push(['If-Match', own.etag]);
      allowed = [204];
    } else if (how === 'unknown') {
      id = randomUUID();
      headers.push(['If-Match', etagValue(ifMatch, io.fixture)]);
      allowed = [404, 412];
    } else {
      id = oddId;
      headers.push(['If-Match', etagValue(ifMatch, io.fixture)]);
      allowed = [400, 404, 412, 414, 428];
    }
    const sent = await io.send({ method: 'DELETE', target: `/users/${id}`, token: tokenOf(token), headers });
    if (refused !== undefined) return void io.expect(sent, refusedOr(refused, id === oddId));
    const answer = io.expect(sent, allowed);
    if (answer.status === 204) {
      io.noteDeleted('users', id);
      const read = await io.send({ target: `/users/${id}`, token: tokenOf(token) });
      io.expect(read, [404]);
    }
  },
);

const listRoutes = category(
  'users, orders: list (GET /users, GET /orders)',
  8,
  fc.tuple(fc.constantFrom('/users', '/orders'), queryArb, tokenArb),
  async ([path, query, token], io) => {
    const sent = await io.send({ target: `${path}?${query}`, token: tokenOf(token) });
    const refused = authRefusal(token, false);
    io.expect(sent, refused !== undefined ? [refused, 400, 431] : [200, 400, 431]);
  },
);

// ---------------------------------------------------------------------------------------------
// Orders.

const createOrder = category(
  'orders: create (POST /orders)',
  12,
  fc.record({
    token: tokenArb,
    body: fc.oneof(
      { weight: 3, arbitrary: bodyArb(validOrderArb) },
      {
        weight: 1,
        arbitrary: fc.tuple(fc.constantFrom('note', 'sku'), unicodeTextArb).map(([field, text]) => ({
          kind: isUnstorable(text) ? ('unstorable' as const) : ('valid' as const),
          text: JSON.stringify({
            items: [{ sku: field === 'sku' ? text : 's', quantity: 1, unitPriceCents: 1 }],
            currency: 'EUR',
            ...(field === 'note' ? { note: text } : {}),
          }),
        })),
      },
    ),
    key: fc.oneof(
      { weight: 6, arbitrary: fc.constant({ kind: 'fresh' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom('', '   ', '""', '"abc', 'a,b', 'a b', 'x'.repeat(300), 'caf\u00e9', '"a"b"')
          .map((value) => ({ kind: 'invalid' as const, value })),
      },
      {
        weight: 1,
        arbitrary: fc.integer({ min: 2, max: 4 }).map((copies) => ({ kind: 'repeated' as const, copies })),
      },
    ),
    contentType: fc.oneof(
      { weight: 5, arbitrary: fc.constant(json) },
      { weight: 1, arbitrary: oddContentTypeArb },
    ),
  }),
  async ({ token, body, key, contentType }, io) => {
    const k = freshKey();
    const headers: [string, string][] = contentType === undefined ? [] : [['Content-Type', contentType]];
    if (key.kind === 'fresh') headers.push(['Idempotency-Key', k]);
    if (key.kind === 'invalid') headers.push(['Idempotency-Key', key.value]);
    if (key.kind === 'repeated') for (let i = 0; i < key.copies; i++) headers.push(['Idempotency-Key', k]);
    const request: RawRequest = {
      method: 'POST',
      target: '/orders',
      token: tokenOf(token),
      headers,
      body: body.text,
    };
    const sent = await io.send(request);
    const refused = authRefusal(token, true);
    if (refused !== undefined) return void io.expect(sent, [refused]);
    const answer = io.expect(sent, [201, 400, 409, 415, 422]);
    if (key.kind !== 'fresh') must(answer.status >= 400, 'an order without a usable key', sent);
    if (key.kind === 'fresh' && answer.status === 201) {
      const again = await io.send(request);
      const replay = io.expect(again, [201]);
      must(
        replay.body === answer.body && replay.headers['idempotent-replayed'] === 'true',
        'not a replay',
        again,
      );
      const read = await io.send({ target: answer.headers.location!, token: tokenOf(token) });
      must(io.expect(read, [200]).body === answer.body, 'the order read back differs', read);
      const other = JSON.parse(body.text) as Record<string, unknown>;
      const reuse = await io.send({ ...request, body: JSON.stringify({ ...other, note: `other ${k}` }) });
      const refusal = io.expect(reuse, [422]);
      must(
        refusal.body.includes(`${problemPrefix}idempotency-key-reuse`),
        'reuse not idempotency-key-reuse',
        reuse,
      );
    }
  },
);

const readOrder = category(
  'orders: read (GET /orders/{id})',
  5,
  fc.tuple(oddIdArb, fc.constantFrom('GET', 'HEAD'), tokenArb),
  async ([id, method, token], io) => {
    const sent = await io.send({ method, target: `/orders/${id}`, token: tokenOf(token) });
    const refused = authRefusal(token, false);
    io.expect(sent, refused !== undefined ? refusedOr(refused, true) : [400, 404, 414]);
  },
);

// ---------------------------------------------------------------------------------------------
// Operations, unknown paths and methods.

const operations = category(
  'operations (/healthz, /readyz, /metrics, /openapi.json)',
  8,
  fc.tuple(
    fc.constantFrom('/healthz', '/readyz', '/metrics', '/openapi.json'),
    fc.constantFrom('GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
    fc.oneof(
      fc.constant(''),
      fc.string({ maxLength: 30 }).map((q) => `?${percentEncode(q)}`),
    ),
    fc.option(
      fc
        .tuple(
          fc.constantFrom('Authorization', 'Accept', 'If-None-Match', 'Content-Type', 'X-Retry-Count'),
          unicodeTextArb,
        )
        .map(([name, text]): [string, string] => [name, stripControls(utf8AsLatin1(text))]),
    ),
    fc.option(fc.string({ maxLength: 40 })),
    tokenArb,
  ),
  async ([path, method, query, header, body, token], io) => {
    const request: RawRequest = { method, target: `${path}${query}`, token: tokenOf(token) };
    if (header) request.headers = [header];
    if (body !== null) request.body = body;
    const reads = method === 'GET' || method === 'HEAD';
    // Public reads answer 200 (a body may be refused by its type or parse); other methods: 405
    // with Allow, or 401 first when no valid key is sent (as on any other non-public route).
    const answer = io.expect(
      await io.send(request),
      reads ? [200, 400, 415] : [400, 401, 403, 404, 405, 415],
    );
    if (answer.status === 405)
      must(/^[A-Z]+(, [A-Z]+)*$/.test(answer.headers.allow ?? ''), 'a 405 without Allow', {
        request,
        answer,
      });
  },
);

const unknownRoutes = category(
  'unknown paths and methods',
  8,
  fc.tuple(
    fc.oneof(
      fc.constantFrom(
        'PATCH',
        'OPTIONS',
        'TRACE',
        'PROPFIND',
        'MKCOL',
        'COPY',
        'MOVE',
        'LOCK',
        'SEARCH',
        'PURGE',
        'QUERY',
        'HEAD',
        'get',
        'Post',
        'DELETE ',
        'G ET',
      ),
      fc.stringMatching(/^[A-Z]{1,12}$/).filter((m) => !['GET', 'POST', 'PUT', 'DELETE'].includes(m)),
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
    ),
    fc.oneof(
      fc.constantFrom(
        '/users',
        '/orders',
        `/users/${'0'.repeat(8)}`,
        '/orders/x',
        '/nope',
        '/users/',
        '//users',
        '/users;x',
        '/USERS',
        '/%75sers',
        '/users/a/b',
        '/',
        '*',
      ),
      fc
        .array(fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{0,12}$/), { minLength: 1, maxLength: 6 })
        .map((s) => `/${s.join('/')}`),
    ),
  ),
  async ([method, path], io) => {
    const known = ['GET', 'POST', 'PUT', 'DELETE'].includes(method);
    const request: RawRequest = { method, target: path };
    if (known && method !== 'GET') {
      request.headers = [
        ['Content-Type', json],
        ['If-Match', '"stale"'],
        ['Idempotency-Key', freshKey()],
      ];
      request.body = '{}';
    }
    const sent = await io.send(request);
    if (method === 'HEAD') {
      const answer = io.expect(sent, [200, 400, 404, 414]);
      must(answer.status !== 200 || answer.body === '', 'a HEAD answer with a body', sent);
      return;
    }
    // A known method on a generated path reaches whatever route matches (then 4xx on '{}').
    const answer = io.expect(sent, known ? [200, 400, 404, 405, 412, 414, 415, 422, 428] : [400, 404, 405]);
    if (answer.status === 405)
      must(/^[A-Z]+(, [A-Z]+)*$/.test(answer.headers.allow ?? ''), 'a 405 without Allow', sent);
  },
);

// ---------------------------------------------------------------------------------------------
// Framing, headers and text that cross the routes.

const framing = category(
  'HTTP framing (lying Content-Length, broken chunks)',
  5,
  fc.tuple(
    bodyRouteArb,
    fc.oneof(validUserArb, validOrderArb).map((doc) => JSON.stringify(doc)),
    fc.oneof(
      fc.record({
        kind: fc.constant('longer' as const),
        extra: fc.integer({ min: 1, max: 10_000 }),
        afterWrite: fc.constantFrom<'end' | 'abort'>('end', 'abort'),
      }),
      fc.record({ kind: fc.constant('shorter' as const), cut: fc.integer({ min: 1, max: 50 }) }),
      fc.record({
        kind: fc.constant('invalid' as const),
        value: fc.constantFrom('-1', 'abc', '1.5', '0x10', '12 12', '+5', '1e3', '99999999999999999999999'),
      }),
      fc.record({ kind: fc.constant('duplicate' as const), delta: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('with-chunked' as const) }),
      fc.record({
        kind: fc.constant('bad-chunk' as const),
        chunk: fc.constantFrom('ZZ\r\n{}\r\n0\r\n\r\n', '2\r\n{}0\r\n\r\n', '5\r\n{}\r\n0\r\n\r\n', '-1\r\n'),
      }),
    ),
  ),
  async ([route, text, how], io) => {
    const base = bodyRequest(route, text, { fixture: io.fixture });
    const length = Buffer.byteLength(text);
    let request: RawRequest;
    if (how.kind === 'longer')
      request = { ...base, contentLength: length + how.extra, afterWrite: how.afterWrite };
    else if (how.kind === 'shorter') request = { ...base, contentLength: Math.max(0, length - how.cut) };
    else if (how.kind === 'invalid') request = { ...base, contentLength: how.value };
    else if (how.kind === 'duplicate')
      request = {
        ...base,
        headers: [...(base.headers ?? []), ['Content-Length', String(length + how.delta)]],
      };
    else if (how.kind === 'with-chunked')
      request = { ...base, headers: [...(base.headers ?? []), ['Transfer-Encoding', 'chunked']] };
    else
      request = {
        ...base,
        contentLength: 'omit',
        headers: [...(base.headers ?? []), ['Transfer-Encoding', 'chunked']],
        body: how.chunk,
        afterWrite: 'end',
      };
    io.expect(await io.send(request), [400, 413], { mayClose: request.afterWrite === 'abort' });
  },
);

const headerBytes = category(
  'header bytes and many headers',
  4,
  fc.oneof(
    fc.record({
      kind: fc.constant('broken' as const),
      route: fc.constantFrom(
        'GET /users',
        'POST /users',
        'PUT /users/{fixture}',
        'POST /orders',
        'GET /healthz',
      ),
      line: fc.oneof(
        fc
          .tuple(
            fc.constantFrom(
              ...[...Array(32).keys(), 0x7f].filter((c) => c !== 0x09 && c !== 0x0a && c !== 0x0d),
            ),
            fc.constantFrom('X-Any', 'Idempotency-Key', 'If-Match', 'Content-Type'),
          )
          .map(([c, name]) => `${name}: a${String.fromCharCode(c)}b`),
        fc.constantFrom(...'()<>@,;\\"/[]?={} \u00e9'.split('')).map((c) => `X${c}Name: v`),
        fc.constantFrom(': no-name', 'X-Fold: a\r\n folded', 'X-CR: a\rb', 'NoColon', 'X-Lf: a\nX-B: b'),
      ),
    }),
    fc.record({
      kind: fc.constant('many' as const),
      count: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 2100, max: 3000 })),
      route: fc.constantFrom('GET /users', 'GET /readyz'),
    }),
  ),
  async (value, io) => {
    if (value.kind === 'many') {
      const headers = Array.from({ length: value.count }, (_, i): [string, string] => [`X-H-${i}`, '1']);
      const sent = await io.send({ target: value.route.split(' ')[1]!, headers });
      // Node's limit is 16 KiB of field bytes: 200 one-byte fields pass, 2 100 do not.
      io.expect(sent, [value.count <= 200 ? 200 : 431]);
      return;
    }
    const [method, path] = value.route.split(' ') as [string, string];
    const target = path.replace('{fixture}', io.fixture.id);
    const head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer demo-writer-a\r\n${value.line}\r\nContent-Type: application/json\r\nIf-Match: ${io.fixture.etag}\r\nIdempotency-Key: ${freshKey()}\r\nContent-Length: 2\r\n\r\n{}`;
    const answer = await io.sendBytes(Buffer.from(head, 'latin1'), false, 'wait');
    const sent: Exchange = {
      request: { method, target, headers: [['(raw)', value.line]], body: '{}' },
      answer,
    };
    const got = io.expect(sent, [400]);
    must(got.body.includes(`${problemPrefix}bad-request`), 'not a bad-request problem', sent);
  },
);

const textInHeadersAndPaths = category(
  'unicode in paths, queries and headers',
  6,
  fc.tuple(
    fc.constantFrom(...unicodePlaces, 'idempotency-key' as const),
    unicodeTextArb.filter((t) => t.length > 0),
  ),
  async ([where, value], io) => {
    const headerSafe = stripControls(utf8AsLatin1(value));
    let request: RawRequest;
    let allowed: number[];
    if (where === 'idempotency-key') {
      const base = bodyRequest(
        'POST /orders',
        JSON.stringify({ items: [{ sku: 'a', quantity: 1, unitPriceCents: 1 }], currency: 'EUR' }),
      );
      request = {
        ...base,
        headers: [
          ['Content-Type', json],
          ['Idempotency-Key', `k${headerSafe}`],
        ],
      };
      allowed = [201, 400];
    } else ({ request, allowed } = unicodePlacement(where, value, io.fixture.id));
    const sent = await io.send(request);
    const answer = io.expect(sent, allowed);
    if (where === 'idempotency-key' && answer.status === 201)
      must(
        /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(`k${headerSafe}`.trim()),
        'a key with bytes outside ASCII was taken',
        sent,
      );
  },
);

const largeBodies = category(
  'deep and oversized bodies',
  1,
  fc.record({
    route: bodyRouteArb,
    shape: fc.constantFrom('array', 'object', 'form', 'flat'),
    depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1000, max: 250_000 })),
    size: fc.oneof(
      fc.integer({ min: bodyLimit - 64, max: bodyLimit + 64 }),
      fc.integer({ min: bodyLimit + 1, max: 2 * bodyLimit }),
    ),
  }),
  async ({ route, shape, depth, size }, io) => {
    let body: string;
    let contentType = json;
    if (shape === 'flat')
      body = `{"username":"abc","email":"a@b.co","bio":"${'x'.repeat(Math.max(0, size - 40))}"}`;
    else if (shape === 'form') {
      body = `a${'[x]'.repeat(depth)}=1&username=abc`;
      contentType = 'application/x-www-form-urlencoded';
    } else {
      const open = shape === 'array' ? '[' : '{"a":';
      const close = shape === 'array' ? ']' : '}';
      body = `{"username":"abc","email":"a@b.co","bio":${open.repeat(depth)}1${close.repeat(depth)}}`;
    }
    const sent = await io.send(bodyRequest(route as BodyRoute, body, { fixture: io.fixture, contentType }));
    io.expect(sent, [Buffer.byteLength(body) > bodyLimit ? 413 : 422]);
  },
);

/** Every category of the long run, with its weight. */
export const fuzzCategories: readonly FuzzCategory[] = [
  createUser,
  readUser,
  replaceUser,
  deleteUser,
  listRoutes,
  createOrder,
  readOrder,
  operations,
  unknownRoutes,
  framing,
  headerBytes,
  textInHeadersAndPaths,
  largeBodies,
];

export const fuzzInputArb: fc.Arbitrary<FuzzInput> = fc.oneof(
  ...fuzzCategories.map((c) => ({ weight: c.weight, arbitrary: c.arbitrary })),
);

export function runInput(input: FuzzInput, io: FuzzIo): Promise<void> {
  const found = fuzzCategories.find((c) => c.name === input.category);
  if (found === undefined) throw new Error(`no fuzz category ${input.category}`);
  return found.run(input.value, io);
}
