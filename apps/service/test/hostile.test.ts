// End-to-end hostile input (issue 5): fast-check generates malformed, truncated, oversized and
// odd requests for every route of the real service (a child process, real HTTP over loopback,
// raw sockets wherever fetch would refuse or tidy the input). Every answer must be a 4xx
// problem+json — never a 5xx — unless the input was in fact valid; the process must stay up;
// and no rejected request may leave a row, or an idempotency claim, behind.
import { connect } from 'node:net';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { type StartedService, startService } from './helpers/service.js';

/** Fixed, so a failure reproduces; fast-check's default shrinking then finds a small input. */
const seed = 20_251_123;
/** The service's body limit (src/service/app.ts defaultBodyLimitBytes). */
const bodyLimit = 1024 * 1024;
const problemPrefix = 'urn:retrysafe:problem:';

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over a socket: the request goes out byte for byte as built, one per connection.

interface RawRequest {
  method?: string;
  /** The request-target exactly as sent (latin1: one char per byte). */
  target: string;
  /** In order, repeats allowed; values are latin1 (send UTF-8 through `utf8AsLatin1`). */
  headers?: [string, string][];
  body?: Buffer | string;
  /** Default: the body's length when there is a body; a string is sent as it is. */
  contentLength?: number | string | 'omit';
  /** Default demo-writer-a; false sends no Authorization. */
  token?: string | false;
  /** Default true; false sends no Host. */
  host?: boolean;
  /**
   * After writing: `wait` for the answer (default); `end` half-closes first, which tells Node
   * the client is gone once the request is complete; `abort` destroys the socket at once.
   */
  afterWrite?: 'wait' | 'end' | 'abort';
}

interface Answer {
  status: number;
  /** Lower-case names; repeats joined with ', '. */
  headers: Record<string, string>;
  body: string;
}

interface Sent {
  request: RawRequest;
  /** undefined: the server closed the connection without an answer. */
  answer: Answer | undefined;
}

let port = 0;
let httpRequests = 0;

function encode(request: RawRequest): Buffer {
  const body = typeof request.body === 'string' ? Buffer.from(request.body) : request.body;
  const lines = [`${request.method ?? 'GET'} ${request.target} HTTP/1.1`];
  if (request.host !== false) lines.push('Host: 127.0.0.1');
  if (request.token !== false) lines.push(`Authorization: Bearer ${request.token ?? 'demo-writer-a'}`);
  lines.push('Connection: close');
  for (const [name, value] of request.headers ?? []) lines.push(`${name}: ${value}`);
  const length = request.contentLength ?? (body ? body.length : 'omit');
  if (length !== 'omit') lines.push(`Content-Length: ${length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

function send(request: RawRequest): Promise<Sent> {
  return sendBytes(encode(request), request.method === 'HEAD', request.afterWrite ?? 'wait').then(
    (answer) => ({
      request,
      answer,
    }),
  );
}

function sendBytes(bytes: Buffer, head: boolean, afterWrite: 'wait' | 'end' | 'abort', timeoutMs = 15_000) {
  httpRequests++;
  return new Promise<Answer | undefined>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (answer: Answer | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${bytes.subarray(0, 200).toString('latin1')}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = parseAnswer(received, head, false);
      if (answer) finish(answer);
    });
    socket.on('error', () => {}); // EPIPE/ECONNRESET after the server closed: the answer decides
    socket.on('close', () => finish(parseAnswer(received, head, true)));
    // A large request goes out in pieces, pausing for an early answer after its head and once
    // past the body limit, and stops when an answer begins. Node closes the connection right
    // after a 413 without draining the rest, and a write into that closed connection (EPIPE)
    // destroys the client's socket before it reads the 413 already waiting for it — the usual
    // HTTP/1.1 hazard that careful clients (or Expect: 100-continue) avoid the same way.
    const headLength = bytes.indexOf('\r\n\r\n') + 4;
    const large = bytes.length - headLength > 64 * 1024;
    const pieces: Buffer[] = large ? [bytes.subarray(0, headLength)] : [bytes];
    if (large) {
      for (let at = headLength; at < bytes.length; at += 64 * 1024) {
        pieces.push(bytes.subarray(at, at + 64 * 1024));
      }
    }
    let bodySent = 0;
    const answerOrPause = () =>
      new Promise<void>((resume) => {
        const onData = () => {
          clearTimeout(pause);
          resume();
        };
        const pause = setTimeout(() => {
          socket.off('data', onData);
          resume();
        }, 100);
        socket.once('data', onData);
      });
    const writeFrom = (index: number) => {
      if (settled || socket.destroyed || received.length > 0) return;
      if (index < pieces.length) {
        socket.write(pieces[index]!, (error) => {
          if (error) return;
          if (index > 0) bodySent += pieces[index]!.length;
          if (large && (index === 0 || bodySent > bodyLimit))
            answerOrPause().then(() => writeFrom(index + 1));
          else writeFrom(index + 1);
        });
      } else if (afterWrite === 'abort') finish(undefined);
      else if (afterWrite === 'end') socket.end();
    };
    writeFrom(0);
  });
}

/** One complete response from `bytes` (skipping 1xx), or undefined while it is incomplete. */
function parseAnswer(bytes: Buffer, head: boolean, closed: boolean): Answer | undefined {
  let rest = bytes;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...fieldLines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of fieldLines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let body = rest.subarray(end + 4);
    if (status >= 100 && status < 200) {
      rest = body;
      continue;
    }
    if (head || status === 204 || status === 304) return { status, headers, body: '' };
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (body.length < length) return closed ? { status, headers, body: body.toString() } : undefined;
      return { status, headers, body: body.subarray(0, length).toString() };
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunks: Buffer[] = [];
      for (;;) {
        const lineEnd = body.indexOf('\r\n');
        if (lineEnd < 0) return undefined;
        const size = Number.parseInt(body.subarray(0, lineEnd).toString(), 16);
        if (size === 0) return { status, headers, body: Buffer.concat(chunks).toString() };
        if (body.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
        body = body.subarray(lineEnd + 2 + size + 2);
      }
    }
    return closed ? { status, headers, body: body.toString() } : undefined;
  }
}

/** UTF-8 bytes of `text` as a latin1 string, so `encode` sends them unchanged. */
function utf8AsLatin1(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** Drops the control characters a header value may not hold (tab stays). */
function stripControls(text: string): string {
  return [...text].filter((c) => c === '\t' || (c >= ' ' && c !== '\x7f')).join('');
}

/** Percent-encodes every byte that is not unreserved; lone surrogates become their CESU-8 bytes. */
function percentEncode(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    const bytes =
      code >= 0xd800 && code <= 0xdfff
        ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
        : [...Buffer.from(char, 'utf8')];
    for (const byte of bytes) {
      const c = String.fromCharCode(byte);
      out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What every answer must be, and what the run created on purpose.

const tried = new Map<string, number>();
const created = { users: new Set<string>(), orders: new Set<string>() };

function tally(category: string): void {
  tried.set(category, (tried.get(category) ?? 0) + 1);
}

function describeSent({ request, answer }: Sent): string {
  const shown = encode(request).subarray(0, 600).toString('latin1');
  const got = answer
    ? `${answer.status} ${answer.headers['content-type']} ${answer.body.slice(0, 400)}`
    : 'none';
  return `request:\n${JSON.stringify(shown)}\nanswer: ${got}`;
}

/**
 * The answer must exist (unless `mayClose`), never be 5xx, be one of `allowed`, and every 4xx
 * must be problem+json with type, title, status equal to the HTTP status, and detail.
 * 201/303 answers are remembered as legitimate creations.
 */
function expectAnswer(sent: Sent, allowed: readonly number[], options: { mayClose?: boolean } = {}): Answer {
  const { answer, request } = sent;
  if (!answer) {
    if (options.mayClose) return { status: 0, headers: {}, body: '' };
    throw new Error(`the server closed without an answer\n${describeSent(sent)}`);
  }
  const context = describeSent(sent);
  expect(answer.status, context).toBeLessThan(500);
  expect(allowed, context).toContain(answer.status);
  if (answer.status >= 400) {
    expect(answer.headers['content-type'], context).toMatch(/^application\/problem\+json/);
    if (request.method !== 'HEAD') {
      const problem = JSON.parse(answer.body) as Record<string, unknown>;
      expect(problem.status, context).toBe(answer.status);
      expect(String(problem.type), context).toMatch(new RegExp(`^${problemPrefix}[a-z-]+$`));
      expect(problem.title, context).toEqual(expect.any(String));
      expect(String(problem.title).length, context).toBeGreaterThan(0);
      expect(problem.detail, context).toEqual(expect.any(String));
      expect(String(problem.detail).length, context).toBeGreaterThan(0);
    }
  }
  if (answer.status === 201 || answer.status === 303) {
    const match = /^\/(users|orders)\/([0-9a-f-]{36})$/.exec(answer.headers.location ?? '');
    expect(match, context).not.toBeNull();
    created[match![1] as 'users' | 'orders'].add(match![2]!);
  }
  return answer;
}

function problemOf(answer: Answer): { type: string; detail: string; errors?: { pointer: string }[] } {
  return JSON.parse(answer.body);
}

async function check<T>(arbitrary: fc.Arbitrary<T>, numRuns: number, run: (value: T) => Promise<void>) {
  await fc.assert(fc.asyncProperty(arbitrary, run), { seed, numRuns });
}

// ---------------------------------------------------------------------------------------------
// Generators.

const usernameArb = fc.stringMatching(/^[a-z0-9_]{3,32}$/);
const validUserArb = fc.record(
  {
    username: usernameArb,
    email: fc.constantFrom('a@example.com', 'x.y@example.org', 'q+z@sub.example.net'),
    age: fc.integer({ min: 0, max: 150 }),
    bio: fc.string({ maxLength: 80 }),
    interests: fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 4 }),
  },
  { requiredKeys: ['username', 'email'] },
);
const validOrderArb = fc.record(
  {
    items: fc.array(
      fc.record({
        sku: fc.string({ minLength: 1, maxLength: 20 }),
        quantity: fc.integer({ min: 1, max: 10_000 }),
        unitPriceCents: fc.integer({ min: 0, max: 100_000_000 }),
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
const unicodeTextArb = fc
  .array(fc.oneof(fc.constantFrom(...nastyChars), fc.string({ unit: 'binary', maxLength: 4 })), {
    maxLength: 24,
  })
  .map((parts) => parts.join(''));

/** Text the service must refuse (422 in a body, 400 elsewhere): NUL or a lone surrogate. */
function isUnstorable(text: string): boolean {
  return text.includes('\u0000') || /\p{Cs}/u.test(text);
}

type BodyRoute = 'POST /users' | 'POST /orders' | 'PUT /users/{fixture}';
const bodyRouteArb = fc.constantFrom<BodyRoute>('POST /users', 'POST /orders', 'PUT /users/{fixture}');

let keyCounter = 0;
function freshKey(): string {
  keyCounter++;
  return `hostile-${process.pid}-${keyCounter}`;
}

interface Fixture {
  id: string;
  etag: string;
  text: string;
}
let fixture: Fixture;

/** A request to a body route; PUT carries the fixture's current ETag unless told otherwise. */
function bodyRequest(
  route: BodyRoute,
  body: Buffer | string,
  extra: Partial<RawRequest> & { contentType?: string | undefined; ifMatch?: string } = {},
): RawRequest {
  const { contentType = 'application/json', ifMatch = fixture.etag, ...rest } = extra;
  const headers: [string, string][] = [];
  if (contentType !== undefined) headers.push(['Content-Type', contentType]);
  if (route === 'POST /orders') headers.push(['Idempotency-Key', freshKey()]);
  if (route === 'PUT /users/{fixture}') headers.push(['If-Match', ifMatch]);
  const [method, path] = route.split(' ') as [string, string];
  return {
    method,
    target: path.replace('{fixture}', fixture.id),
    body,
    ...rest,
    headers: [...headers, ...(rest.headers ?? [])],
  };
}

// ---------------------------------------------------------------------------------------------

let service: StartedService;

async function expectServiceUp(target: StartedService = service): Promise<void> {
  expect(target.process.exitCode).toBeNull();
  expect(target.process.signalCode).toBeNull();
  const health = await fetch(new URL('/healthz', target.url));
  expect(health.status).toBe(200);
}

beforeAll(async () => {
  service = await startService();
  port = Number(new URL(service.url).port);
  const { answer } = await send({
    method: 'POST',
    target: '/users',
    headers: [['Content-Type', 'application/json']],
    body: JSON.stringify({ username: 'hostile_fixture', email: 'fixture@example.com', bio: 'stays' }),
  });
  expect(answer?.status).toBe(201);
  const body = JSON.parse(answer!.body) as { id: string };
  created.users.add(body.id);
  fixture = { id: body.id, etag: answer!.headers.etag!, text: answer!.body };
});

afterAll(async () => {
  const total = [...tried.values()].reduce((sum, n) => sum + n, 0);
  const lines = [...tried].map(([category, n]) => `  ${category}: ${n}`);
  console.info(
    `hostile input: ${total} generated inputs (${httpRequests} HTTP requests), seed ${seed}\n${lines.join('\n')}`,
  );
  await service?.stop();
});

describe('hostile input against the reference service (SQLite)', () => {
  // Every batch ends with the process alive and healthy.
  afterEach(async () => {
    await expectServiceUp();
  });

  it('malformed JSON bodies: 400 (or 422 when the mangled text still parses), never 5xx', async () => {
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
    await check(fc.tuple(bodyRouteArb, mangle), 300, async ([route, text]) => {
      tally('malformed JSON bodies');
      // A stale If-Match on PUT: if the mangled text happens to be a valid user, 412, not a change.
      const sent = await send(bodyRequest(route, text, { ifMatch: '"stale"' }));
      const creates = route === 'PUT /users/{fixture}' ? [] : [201, 409];
      const answer = expectAnswer(sent, [400, 412, 422, ...creates]);
      if (answer.status === 400) expect(problemOf(answer).type).toBe(`${problemPrefix}bad-request`);
    });
  });

  it('truncated JSON bodies (a strict prefix of a valid one) are 400 on every body route', async () => {
    const truncated = fc
      .tuple(bodyRouteArb, fc.oneof(validUserArb, validOrderArb), fc.nat())
      .map(([route, doc, at]) => {
        const text = JSON.stringify(doc);
        return [route, text.slice(0, at % text.length)] as const;
      });
    await check(truncated, 250, async ([route, text]) => {
      tally('truncated JSON bodies');
      expectAnswer(await send(bodyRequest(route, text)), [400]);
    });
  });

  it('wrong, missing and odd content types: 415 or a parse/validation 4xx, 2xx only for valid input', async () => {
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
    await check(fc.tuple(bodyRouteArb, contentTypeArb, bodyArb), 300, async ([route, type, body]) => {
      tally('content types');
      const sent = await send(bodyRequest(route, body, { contentType: type, ifMatch: '"stale"' }));
      const creates = route === 'PUT /users/{fixture}' ? [] : [201, 409];
      const answer = expectAnswer(sent, [400, 412, 415, 422, ...creates]);
      if (route !== 'PUT /users/{fixture}' && type !== undefined && unknownTypes.includes(type)) {
        expect(answer.status, describeSent(sent)).toBe(415);
      }
    });
  });

  it('deeply nested JSON and form bodies: 422 (413 past the size limit), never a stack overflow', async () => {
    const nested = fc.record({
      route: bodyRouteArb,
      depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1000, max: 250_000 })),
      shape: fc.constantFrom('array', 'object', 'constructor', 'form'),
      field: fc.constantFrom('root', 'username', 'bio', 'interests', 'items', 'note'),
    });
    await check(nested, 120, async ({ route, depth, shape, field }) => {
      tally('deeply nested bodies');
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
      const sent = await send(bodyRequest(route, body, { contentType }));
      const expected = Buffer.byteLength(body) > bodyLimit ? 413 : shape === 'constructor' ? 400 : 422;
      const answer = expectAnswer(sent, [400, 413, 422]);
      // `constructor` keys may be refused as prototype poisoning (400) or by the schema (422).
      if (expected !== 400) expect(answer.status, describeSent(sent)).toBe(expected);
    });
  });

  it('bodies around and past the 1 MiB limit: 413 problem+json past it, JSON and form, honest or chunked', async () => {
    const sized = fc.record({
      route: bodyRouteArb,
      size: fc.oneof(
        fc.integer({ min: bodyLimit - 64, max: bodyLimit + 64 }),
        fc.integer({ min: bodyLimit + 1, max: 3 * bodyLimit }),
      ),
      kind: fc.constantFrom('json', 'form'),
      framing: fc.constantFrom('content-length', 'chunked'),
    });
    await check(sized, 40, async ({ route, size, kind, framing }) => {
      tally('oversized bodies');
      const prefix = kind === 'json' ? '{"username":"abc","email":"a@b.co","bio":"' : 'username=abc&bio=';
      const suffix = kind === 'json' ? '"}' : '';
      const filler = Math.max(0, size - prefix.length - suffix.length);
      const body = Buffer.from(prefix + 'x'.repeat(filler) + suffix);
      const contentType = kind === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
      const request = bodyRequest(route, body, { contentType });
      const sent =
        framing === 'chunked'
          ? await send({
              ...request,
              contentLength: 'omit',
              headers: [...(request.headers ?? []), ['Transfer-Encoding', 'chunked']],
              body: Buffer.concat([
                Buffer.from(`${body.length.toString(16)}\r\n`),
                body,
                Buffer.from('\r\n0\r\n\r\n'),
              ]),
            })
          : await send(request);
      // Under the limit these bodies parse, and fail the schema (bio over 2000 characters).
      const answer = expectAnswer(sent, [body.length > bodyLimit ? 413 : 422]);
      if (answer.status === 413) {
        expect(problemOf(answer)).toMatchObject({ type: `${problemPrefix}content-too-large` });
        expect(problemOf(answer).detail).toContain(String(bodyLimit));
      }
    });
  });

  it('lying Content-Length and broken chunked framing: 400 or a closed connection, nothing created', async () => {
    const validBody = fc
      .tuple(bodyRouteArb, fc.oneof(validUserArb, validOrderArb))
      .map(([route, doc]) => [route, JSON.stringify(doc)] as const);
    const lie = fc.oneof(
      // Claims more than it sends, then half-closes or gives up.
      fc.record({
        kind: fc.constant('longer' as const),
        extra: fc.integer({ min: 1, max: 10_000 }),
        afterWrite: fc.constantFrom<'end' | 'abort'>('end', 'abort'),
      }),
      // Claims less than it sends: the rest reads as a (broken) next request.
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
    );
    await check(fc.tuple(validBody, lie), 200, async ([[route, text], how]) => {
      tally('lying framing');
      const base = bodyRequest(route, text);
      const length = Buffer.byteLength(text);
      let request: RawRequest;
      if (how.kind === 'longer')
        request = { ...base, contentLength: length + how.extra, afterWrite: how.afterWrite };
      else if (how.kind === 'shorter') request = { ...base, contentLength: Math.max(0, length - how.cut) };
      else if (how.kind === 'invalid') request = { ...base, contentLength: how.value };
      else if (how.kind === 'duplicate') {
        request = {
          ...base,
          headers: [...(base.headers ?? []), ['Content-Length', String(length + how.delta)]],
        };
      } else if (how.kind === 'with-chunked') {
        request = { ...base, headers: [...(base.headers ?? []), ['Transfer-Encoding', 'chunked']] };
      } else {
        request = {
          ...base,
          contentLength: 'omit',
          headers: [...(base.headers ?? []), ['Transfer-Encoding', 'chunked']],
          body: how.chunk,
          afterWrite: 'end',
        };
      }
      const sent = await send(request);
      // `99999999999999999999999` overflows the parser (400) or reads as past the limit (413).
      expectAnswer(sent, [400, 413], { mayClose: request.afterWrite === 'abort' });
    });
  });

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
    await check(fc.tuple(route, invalidKey, validUserArb, validOrderArb), 250, async ([r, key, u, o]) => {
      tally('invalid Idempotency-Key');
      const body = JSON.stringify(r === 'POST /users' ? u : o);
      const request = bodyRequest(r, body);
      const headers = (request.headers ?? []).filter(([name]) => name !== 'Idempotency-Key');
      const sent = await send({ ...request, headers: [...headers, ['Idempotency-Key', key]] });
      const answer = expectAnswer(sent, [400]);
      expect(problemOf(answer).type, describeSent(sent)).toBe(`${problemPrefix}idempotency-key-invalid`);
    });
  });

  it('a repeated Idempotency-Key header is 400 "sent more than once", even with equal values', async () => {
    const token = fc.stringMatching(/^[A-Za-z0-9-]{1,40}$/);
    const copies = fc.oneof(
      fc.array(token, { minLength: 2, maxLength: 4 }),
      fc.tuple(token, fc.integer({ min: 2, max: 4 })).map(([t, n]) => Array<string>(n).fill(t)),
    );
    const route = fc.constantFrom<BodyRoute>('POST /users', 'POST /orders');
    await check(fc.tuple(route, copies, validUserArb), 150, async ([r, keys, user]) => {
      tally('repeated Idempotency-Key');
      const body = JSON.stringify(
        r === 'POST /users'
          ? user
          : { items: [{ sku: 'a', quantity: 1, unitPriceCents: 1 }], currency: 'EUR' },
      );
      const request = bodyRequest(r, body);
      const headers = (request.headers ?? []).filter(([name]) => name !== 'Idempotency-Key');
      const sent = await send({
        ...request,
        headers: [...headers, ...keys.map((k): [string, string] => ['Idempotency-Key', k])],
      });
      const answer = expectAnswer(sent, [400]);
      expect(problemOf(answer).detail, describeSent(sent)).toContain('more than once');
    });
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
    await check(fc.tuple(shape, validOrderArb), 60, async ([{ key: generated, quoted }, order]) => {
      tally('valid Idempotency-Key shapes');
      const key = `${freshKey()}${generated}`.slice(0, 255);
      const asHeader = (k: string) => (quoted ? `"${k.replace(/[\\"]/g, (c) => `\\${c}`)}"` : k);
      const body = JSON.stringify(order);
      const post = (header: string, text = body) =>
        send({
          method: 'POST',
          target: '/orders',
          headers: [
            ['Content-Type', 'application/json'],
            ['Idempotency-Key', header],
          ],
          body: text,
        });
      const first = expectAnswer(await post(asHeader(key)), [201]);
      const again = expectAnswer(await post(asHeader(key)), [201]);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toBe(first.body);
      if (!quoted) {
        const sameAsQuoted = expectAnswer(await post(`"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`), [201]);
        expect(sameAsQuoted.body).toBe(first.body);
      }
      const reuse = expectAnswer(
        await post(asHeader(key), JSON.stringify({ ...order, note: 'other' })),
        [422],
      );
      expect(problemOf(reuse).type).toBe(`${problemPrefix}idempotency-key-reuse`);
    });
  });

  it('unicode in body fields: NUL and lone surrogates are 422, everything else reads back byte for byte', async () => {
    const where = fc.constantFrom('bio', 'interests', 'note', 'sku', 'username');
    const encoding = fc.constantFrom('json', 'json-ascii', 'bom', 'form', 'invalid-utf8');
    await check(
      fc.tuple(where, encoding, unicodeTextArb, usernameArb),
      300,
      async ([field, how, text, name]) => {
        tally('unicode in bodies');
        const isOrder = field === 'note' || field === 'sku';
        const user: Record<string, unknown> = { username: name, email: `${name}@example.com` };
        if (field === 'bio') user.bio = text;
        if (field === 'interests') user.interests = [text];
        if (field === 'username') user.username = text;
        const order = {
          items: [{ sku: field === 'sku' ? text : 'sku', quantity: 1, unitPriceCents: 5 }],
          currency: 'EUR',
          ...(field === 'note' ? { note: text } : {}),
        };
        const doc = isOrder ? order : user;
        let body: Buffer;
        let contentType = 'application/json';
        let unstorable = isUnstorable(text);
        if (how === 'json') body = Buffer.from(JSON.stringify(doc));
        else if (how === 'json-ascii') {
          body = Buffer.from(
            JSON.stringify(doc).replace(
              /[^\x20-\x7e]/g,
              (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
            ),
          );
        } else if (how === 'bom') body = Buffer.from(`\ufeff${JSON.stringify(doc)}`);
        else if (how === 'invalid-utf8') {
          // Bytes that are not UTF-8 inside the last string: decoded as U+FFFD, so storable.
          const json = JSON.stringify(doc);
          const at = json.lastIndexOf('"');
          body = Buffer.concat([
            Buffer.from(json.slice(0, at)),
            Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff, 0xc0, 0xaf]),
            Buffer.from(json.slice(at)),
          ]);
          unstorable = false;
        } else {
          contentType = 'application/x-www-form-urlencoded';
          const pairs: [string, string][] = isOrder
            ? [
                ['items[0][sku]', order.items[0]!.sku],
                ['items[0][quantity]', '1'],
                ['items[0][unitPriceCents]', '5'],
                ['currency', 'EUR'],
                ...(field === 'note' ? [['note', text] as [string, string]] : []),
              ]
            : Object.entries(user).map(([k, v]) => [
                Array.isArray(v) ? `${k}[]` : k,
                String(Array.isArray(v) ? v[0] : v),
              ]);
          body = Buffer.from(pairs.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&'));
          // A lone surrogate cannot be UTF-8: its CESU-8 bytes fail to decode, and qs then keeps
          // the whole value percent-encoded, NUL and all, as plain (storable) text.
          unstorable = text.includes('\u0000') && !/\p{Cs}/u.test(text);
        }
        const sent = await send(bodyRequest(isOrder ? 'POST /orders' : 'POST /users', body, { contentType }));
        const answer = expectAnswer(sent, [201, 409, 422]);
        if (unstorable) {
          expect(answer.status, describeSent(sent)).toBe(422);
          if (how === 'json' || how === 'json-ascii') {
            const pointers = (problemOf(answer).errors ?? []).map((e) => e.pointer);
            expect(pointers.some((p) => p.startsWith(`/${field === 'sku' ? 'items/0/sku' : field}`))).toBe(
              true,
            );
          }
        }
        if (answer.status === 201) {
          // The representation read back is the one the 201 answered, and so is its ETag.
          const read = await send({ target: answer.headers.location! });
          expect(read.answer?.status).toBe(200);
          expect(read.answer?.body, describeSent(sent)).toBe(answer.body);
          expect(read.answer?.headers.etag).toBe(answer.headers.etag);
        }
      },
    );
  });

  it('unicode and stray bytes in paths, query strings and header values: 4xx problem, never 5xx', async () => {
    const place = fc.constantFrom(
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
    );
    const text = unicodeTextArb.filter((t) => t.length > 0);
    await check(fc.tuple(place, text), 300, async ([where, value]) => {
      tally('unicode in paths, queries and headers');
      const headerSafe = stripControls(utf8AsLatin1(value));
      let request: RawRequest;
      let allowed = [400, 404, 414];
      switch (where) {
        case 'path-encoded':
          request = { target: `/users/${percentEncode(value)}` };
          break;
        case 'path-raw':
          request = { target: `/orders/${utf8AsLatin1(value).replace(/[\s?#/]/g, '')}x` };
          break;
        case 'cursor':
          request = { target: `/users?cursor=${percentEncode(value)}` };
          break;
        case 'limit':
          request = { target: `/orders?limit=${percentEncode(value)}` };
          allowed = [200, 400];
          break;
        case 'authorization':
          request = { target: '/users', token: headerSafe };
          allowed = [401];
          break;
        case 'content-type':
          request = bodyRequest('POST /users', '{}', { contentType: headerSafe });
          allowed = [400, 415, 422];
          break;
        default:
          request = {
            target: `/users/${fixture.id}`,
            headers: [[where, headerSafe]],
          };
          allowed = [200, 304];
      }
      expectAnswer(await send(request), allowed);
    });
  });

  it('malformed If-Match / If-None-Match lists: 412 or 428, and the user never changes', async () => {
    const tag = fc.oneof(
      fc.string({ maxLength: 12 }).map((t) => `"${t}"`),
      fc.string({ maxLength: 12 }).map((t) => `W/"${t}"`),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('*', 'W/', '"', '""', 'W/""', '"a" "b"', '"a",,"b"', ',', 'W/ "a"', 'w/"a"'),
      fc.integer({ min: 0x80, max: 0xff }).map((c) => `"${String.fromCharCode(c)}"`),
    );
    const list = fc.oneof(
      fc
        .array(tag, { minLength: 1, maxLength: 6 })
        .chain((tags) =>
          fc.constantFrom(
            tags.join(', '),
            tags.join(','),
            tags.join(' '),
            `${tags.join(', ')},`,
            ` ${tags.join(' ,\t')}`,
          ),
        ),
      fc.integer({ min: 50, max: 900 }).map((n) => Array.from({ length: n }, (_, i) => `"t${i}"`).join(', ')),
      // The current ETag, but weak, unquoted, or inside a broken list: still no strong match.
      fc
        .constantFrom('weak', 'bare', 'broken')
        .map((how) =>
          how === 'weak'
            ? `W/${fixture.etag}`
            : how === 'bare'
              ? fixture.etag.slice(1, -1)
              : `${fixture.etag} x`,
        ),
    );
    const usable = list.filter(
      (v) => v.trim() !== '*' && !v.split(',').some((t) => t.trim() === fixture.etag),
    );
    const target = fc.constantFrom(
      'PUT if-match',
      'DELETE if-match',
      'PUT if-none-match',
      'GET if-none-match',
      'PUT missing',
    );
    await check(fc.tuple(target, usable), 300, async ([how, value]) => {
      tally('If-Match / If-None-Match');
      const body = JSON.stringify({ username: 'hostile_fixture', email: 'changed@example.com' });
      let sent: Sent;
      if (how === 'PUT if-match') {
        sent = await send(bodyRequest('PUT /users/{fixture}', body, { ifMatch: value }));
        expectAnswer(sent, [412]);
      } else if (how === 'DELETE if-match') {
        sent = await send({
          method: 'DELETE',
          target: `/users/${fixture.id}`,
          headers: [['If-Match', value]],
        });
        expectAnswer(sent, [412]);
      } else if (how === 'PUT if-none-match') {
        const request = bodyRequest('PUT /users/{fixture}', body);
        sent = await send({
          ...request,
          headers: [
            ['Content-Type', 'application/json'],
            ['If-None-Match', value],
          ],
        });
        expectAnswer(sent, [412, 428]);
      } else if (how === 'GET if-none-match') {
        // If-None-Match compares weakly: W/ plus the current tag is a match (304), all else 200.
        sent = await send({ target: `/users/${fixture.id}`, headers: [['If-None-Match', value]] });
        const answer = expectAnswer(sent, value === `W/${fixture.etag}` ? [304] : [200]);
        if (answer.status === 200) expect(answer.body).toBe(fixture.text);
      } else {
        const missing = `00000000-0000-4000-8000-${String(keyCounter++).padStart(12, '0')}`;
        sent = await send({
          ...bodyRequest('PUT /users/{fixture}', body),
          target: `/users/${missing}`,
          headers: [
            ['Content-Type', 'application/json'],
            ['If-Match', value],
          ],
        });
        expectAnswer(sent, [412]);
      }
    });
    const read = await send({ target: `/users/${fixture.id}` });
    expect(read.answer?.body).toBe(fixture.text);
    expect(read.answer?.headers.etag).toBe(fixture.etag);
  });

  it('odd path ids on every id route: 400, 404, 412, 414 or 428 problem, never a write', async () => {
    const id = fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }).map(percentEncode),
      fc.string({ minLength: 1, maxLength: 30 }).map((s) => s.replace(/[\s?#/%]/g, '') || 'x'),
      fc.constantFrom(
        '..',
        '.',
        '%2e%2e',
        '%2F',
        'a%2Fb',
        '%00',
        'a%00',
        '%',
        '%Z1',
        '%C3',
        '%ED%A0%80',
        '%C0%AF',
        '%FF',
      ),
      fc.integer({ min: 65, max: 100 }).map((n) => 'a'.repeat(n)),
      fc.integer({ min: 101, max: 8000 }).map((n) => 'b'.repeat(n)),
      fc.uuid(),
    );
    const route = fc.constantFrom('GET /users', 'PUT /users', 'DELETE /users', 'GET /orders');
    await check(fc.tuple(route, id), 300, async ([r, raw]) => {
      tally('odd path ids');
      const [method, base] = r.split(' ') as [string, string];
      const request: RawRequest = { method, target: `${base}/${raw}` };
      if (method === 'PUT') {
        request.headers = [
          ['Content-Type', 'application/json'],
          ['If-Match', '"stale"'],
        ];
        request.body = JSON.stringify({ username: 'odd_path', email: 'odd@example.com' });
      }
      if (method === 'DELETE') request.headers = [['If-Match', '"stale"']];
      expectAnswer(await send(request), [400, 404, 412, 414, 428]);
    });
  });

  it('unknown paths and odd methods: 404 or 400 problem (HEAD without a body), never 5xx', async () => {
    const knownPaths = [
      '/users',
      '/orders',
      `/users/${'0'.repeat(8)}`,
      '/healthz',
      '/metrics',
      '/openapi.json',
      '/nope',
      '/users/',
      '//users',
      '/users;x',
      '/USERS',
      '/%75sers',
    ];
    const path = fc.oneof(
      fc.constantFrom(...knownPaths),
      fc
        .array(fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{0,12}$/), { minLength: 1, maxLength: 6 })
        .map((s) => `/${s.join('/')}`),
    );
    const method = fc.oneof(
      fc.constantFrom(
        'PATCH',
        'OPTIONS',
        'TRACE',
        'PROPFIND',
        'PROPPATCH',
        'MKCOL',
        'COPY',
        'MOVE',
        'LOCK',
        'UNLOCK',
        'SEARCH',
        'PURGE',
        'REPORT',
        'MERGE',
        'LINK',
        'UNLINK',
        'BIND',
        'SOURCE',
        'QUERY',
        'HEAD',
        'get',
        'Post',
        'DELETE ',
        'G ET',
      ),
      fc.stringMatching(/^[A-Z]{1,12}$/).filter((m) => !['GET', 'POST', 'PUT', 'DELETE'].includes(m)),
    );
    await check(fc.tuple(method, path), 300, async ([m, p]) => {
      tally('unknown paths and odd methods');
      const sent = await send({ method: m, target: p });
      const safe = m === 'HEAD';
      // HEAD on a real route is a GET without a body; every other method here has no route.
      const answer = expectAnswer(sent, safe ? [200, 400, 404, 414] : [400, 404]);
      if (safe && answer.status === 200) expect(answer.body).toBe('');
    });
  });

  it('very many and very large header fields: answered normally under 16 KiB, 431 problem+json over it', async () => {
    const shape = fc.record({
      count: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 500, max: 3000 })),
      valueLength: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1000, max: 20_000 })),
      route: fc.constantFrom('GET /users', 'POST /users', 'POST /orders'),
    });
    await check(shape, 80, async ({ count, valueLength, route }) => {
      tally('many and large headers');
      const value = 'v'.repeat(valueLength);
      const extra = Array.from({ length: count }, (_, i): [string, string] => [
        `X-H-${i}`,
        i === 0 ? value : '1',
      ]);
      let request: RawRequest;
      if (route === 'GET /users') request = { target: '/users', headers: extra };
      else {
        const body = '{}';
        const base = bodyRequest(route as BodyRoute, body);
        request = { ...base, headers: [...(base.headers ?? []), ...extra] };
      }
      // Node's limit (16 KiB) counts the bytes of field names and values (measured: 1 900
      // one-byte fields pass, 2 000 do not); near it, the request line and framing decide.
      const head = encode({ ...request, body: '' })
        .toString('latin1')
        .split('\r\n')
        .slice(1);
      const fieldBytes = head.reduce((sum, line) => sum + line.length - (line.includes(': ') ? 2 : 0), 0);
      const sent = await send(request);
      const under = route === 'GET /users' ? 200 : 422;
      const expected = fieldBytes < 16_000 ? [under] : fieldBytes > 16_800 ? [431] : [under, 431];
      const answer = expectAnswer(sent, expected);
      if (answer.status === 431) {
        expect(problemOf(answer).type).toBe(`${problemPrefix}request-header-fields-too-large`);
      }
    });
  });

  it('bytes a header may not hold, and broken header syntax: 400 problem+json from the parser', async () => {
    const controls = [...Array(32).keys(), 0x7f].filter((c) => c !== 0x09 && c !== 0x0a && c !== 0x0d);
    const broken = fc.oneof(
      fc
        .tuple(
          fc.constantFrom(...controls),
          fc.constantFrom('X-Any', 'Idempotency-Key', 'If-Match', 'Content-Type'),
        )
        .map(([c, name]) => `${name}: a${String.fromCharCode(c)}b`),
      fc.constantFrom(...'()<>@,;\\"/[]?={} \u00e9'.split('')).map((c) => `X${c}Name: v`),
      fc.constantFrom(': no-name', 'X-Fold: a\r\n folded', 'X-CR: a\rb', 'NoColon', 'X-Lf: a\nX-B: b'),
    );
    const route = fc.constantFrom('GET /users', 'POST /users', 'PUT /users/{fixture}');
    await check(fc.tuple(route, broken), 150, async ([r, line]) => {
      tally('bad header bytes');
      const [method, path] = r.split(' ') as [string, string];
      const head = `${method} ${path.replace('{fixture}', fixture.id)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer demo-writer-a\r\n${line}\r\nContent-Type: application/json\r\nIf-Match: ${fixture.etag}\r\nContent-Length: 2\r\n\r\n{}`;
      const answer = await sendBytes(Buffer.from(head, 'latin1'), false, 'wait');
      const sent: Sent = { request: { method, target: path, headers: [['(raw)', line]] }, answer };
      const got = expectAnswer(sent, [400]);
      expect(problemOf(got).type).toBe(`${problemPrefix}bad-request`);
    });
  });

  it('generated query strings on the list routes: 200 or 400 problem', async () => {
    const pair = fc.oneof(
      fc.tuple(
        fc.constantFrom('limit', 'cursor', 'Limit', '__proto__', 'constructor', 'limit[]', 'cursor[a]', ''),
        fc.string({ maxLength: 20 }),
      ),
      fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })),
    );
    const query = fc.oneof(
      fc
        .array(pair, { maxLength: 6 })
        .map((pairs) => pairs.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&')),
      fc.string({ maxLength: 40 }).map((s) => s.replace(/[\s#]/g, '')),
      fc
        .integer({ min: 100, max: 3000 })
        .map((n) => Array.from({ length: n }, (_, i) => `limit=${i}`).join('&')),
    );
    await check(fc.tuple(fc.constantFrom('/users', '/orders'), query), 200, async ([path, q]) => {
      tally('query strings');
      expectAnswer(await send({ target: `${path}?${q}` }), [200, 400, 431]);
    });
  });

  // Regression: Fastify's default text/plain parser handed a text body to the schema as a
  // string, so a media type the route does not take was 422 "must be object", not 415.
  it('answers a text/plain body with 415, not 422', async () => {
    const sent = await send(
      bodyRequest('POST /users', '{"username":"plain_text","email":"p@example.com"}', {
        contentType: 'text/plain',
      }),
    );
    expect(problemOf(expectAnswer(sent, [415])).type).toBe(`${problemPrefix}unsupported-media-type`);
  });

  // Regression: Node answered these itself — a bare 400 with no body, a dropped connection, a
  // bare 417 — and Fastify's own parser-error answers were application/json.
  it('answers the requests Node handles itself as problems too: no Host, CONNECT, Expect', async () => {
    const noHost = expectAnswer(await send({ target: '/users', host: false }), [400]);
    expect(problemOf(noHost).detail).toContain('Host');
    // Node hands CONNECT to the server's `connect` event, never to Fastify.
    expectAnswer(await send({ method: 'CONNECT', target: '127.0.0.1:1', token: false }), [400]);
    const expectation = await send({
      ...bodyRequest('POST /users', '{}'),
      headers: [
        ['Content-Type', 'application/json'],
        ['Expect', 'teapot'],
      ],
    });
    expectAnswer(expectation, [417]);
    const continued = await send({
      ...bodyRequest('POST /users', '{}'),
      headers: [
        ['Content-Type', 'application/json'],
        ['Expect', '100-continue'],
      ],
    });
    expectAnswer(continued, [422]);
  });

  it('operations routes (health, metrics, OpenAPI) under hostile queries, headers and bodies', async () => {
    const path = fc.constantFrom('/healthz', '/metrics', '/openapi.json');
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE');
    const query = fc.oneof(
      fc.constant(''),
      fc.string({ maxLength: 30 }).map((q) => `?${percentEncode(q)}`),
    );
    const header = fc.oneof(
      fc.constant(undefined),
      fc
        .tuple(
          fc.constantFrom('Authorization', 'Accept', 'If-None-Match', 'Content-Type', 'X-Retry-Count'),
          unicodeTextArb,
        )
        .map(([name, text]): [string, string] => [name, stripControls(utf8AsLatin1(text))]),
    );
    const body = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 40 }));
    await check(fc.tuple(path, method, query, header, body), 150, async ([p, m, q, h, b]) => {
      tally('operations routes');
      const request: RawRequest = { method: m, target: `${p}${q}`, token: false };
      if (h) request.headers = [h];
      if (b !== undefined) request.body = b;
      // Public reads answer 200 (a body on a GET may be refused by its content type or parse);
      // other methods have no route here: 401 without a key (as any unknown route), else 404.
      const reads = m === 'GET' || m === 'HEAD';
      expectAnswer(await send(request), reads ? [200, 400, 415] : [400, 401, 404, 415]);
    });
  });

  it('left nothing half-written: every row came from a 2xx, no claim is left, no refusal was stored', async () => {
    const db = new Database(service.dbPath, { readonly: true, fileMustExist: true });
    try {
      const users = db.prepare('SELECT id FROM users').pluck().all() as string[];
      const orders = db.prepare('SELECT id FROM orders').pluck().all() as string[];
      expect(users.filter((id) => !created.users.has(id))).toEqual([]);
      expect(orders.filter((id) => !created.orders.has(id))).toEqual([]);
      expect(users.length).toBe(created.users.size);
      expect(orders.length).toBe(created.orders.size);
      const claimed = db
        .prepare("SELECT count(*) FROM retrysafe_idempotency WHERE state = 'claimed'")
        .pluck()
        .get();
      expect(claimed).toBe(0);
      // Only answers the handler reached are stored: never a parse, media type, size or key refusal.
      const stored = db
        .prepare("SELECT DISTINCT status FROM retrysafe_idempotency WHERE state = 'completed'")
        .pluck()
        .all() as number[];
      expect(stored.filter((status) => [400, 413, 414, 415, 422, 431].includes(status))).toEqual([]);
    } finally {
      db.close();
    }
    const read = await send({ target: `/users/${fixture.id}` });
    expect(read.answer?.body).toBe(fixture.text);
    const errors = service.logRecords().filter((record) => Number(record.level) >= 50);
    expect(errors).toEqual([]);
  });
});

describe('hostile text against the reference service on PostgreSQL', () => {
  let pgDatabase: TestDatabase;
  let pgService: StartedService;
  let sqlitePort = 0;

  beforeAll(async () => {
    pgDatabase = await createTestDatabase('retrysafe_hostile');
    pgService = await startService({ databaseUrl: pgDatabase.url });
    sqlitePort = port;
    port = Number(new URL(pgService.url).port);
  });
  afterAll(async () => {
    port = sqlitePort;
    await pgService?.stop();
    await pgDatabase?.drop();
  });

  // Regression: PostgreSQL's text and jsonb refuse U+0000 and lone surrogates, so such a body
  // or path id was a 500 there (and the same body was silently altered on SQLite).
  it('NUL and lone surrogates in bodies, ids and queries are 4xx problems, not 500s', async () => {
    const bad = fc
      .tuple(unicodeTextArb, fc.constantFrom('\u0000', '\ud800', '\udfff'), fc.nat())
      .map(([text, char, at]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + char + text.slice(i);
      })
      // An inserted half can complete a neighbouring one into a valid pair.
      .filter(isUnstorable);
    const place = fc.constantFrom(
      'bio',
      'interests',
      'username',
      'note',
      'sku',
      'user id',
      'put id',
      'order id',
      'cursor',
    );
    await check(fc.tuple(place, bad), 150, async ([where, text]) => {
      tally('PostgreSQL: unstorable text');
      let request: RawRequest;
      let allowed = [400, 404, 412, 428];
      if (where === 'user id') request = { target: `/users/${percentEncode(text)}` };
      else if (where === 'order id') request = { target: `/orders/${percentEncode(text)}` };
      else if (where === 'put id') {
        request = {
          method: 'PUT',
          target: `/users/${percentEncode(text)}`,
          headers: [
            ['Content-Type', 'application/json'],
            ['If-None-Match', '*'],
          ],
          body: '{"username":"pg_put","email":"p@example.com"}',
        };
      } else if (where === 'cursor') request = { target: `/orders?cursor=${percentEncode(text)}` };
      else {
        allowed = [422];
        const body =
          where === 'note' || where === 'sku'
            ? {
                items: [{ sku: where === 'sku' ? text : 's', quantity: 1, unitPriceCents: 1 }],
                currency: 'EUR',
                ...(where === 'note' ? { note: text } : {}),
              }
            : {
                username: where === 'username' ? text : 'pg_user',
                email: 'p@example.com',
                ...(where === 'bio' ? { bio: text } : {}),
                ...(where === 'interests' ? { interests: [text] } : {}),
              };
        const route: BodyRoute = where === 'note' || where === 'sku' ? 'POST /orders' : 'POST /users';
        request = bodyRequest(route, JSON.stringify(body));
      }
      expectAnswer(await send(request), allowed);
    });
    await expectServiceUp(pgService);
    const counts = await pgDatabase.pool.query(
      "SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM orders)::int AS orders, (SELECT count(*) FROM retrysafe_idempotency WHERE state = 'claimed')::int AS claimed",
    );
    expect(counts.rows[0]).toEqual({ users: 0, orders: 0, claimed: 0 });
    expect(pgService.logRecords().filter((record) => Number(record.level) >= 50)).toEqual([]);
  });
});
