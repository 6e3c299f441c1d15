// Shared by the hostile-*.test.ts files (issue 5): one service per file, the rules every answer to
// hostile input must follow, the generators, and the per-case check that nothing was half-written.
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import {
  type Answer,
  describeExchange,
  type Exchange,
  type RawHttp,
  type RawRequest,
  rawHttp,
} from './helpers/raw-http.js';
import { type StartedService, startService } from './helpers/service.js';

/** Fixed, so a failure reproduces; fast-check's default shrinking then finds a small input. */
export const seed = 20_251_123;
/** The service's body limit (apps/service/src/app.ts defaultBodyLimitBytes). */
export const bodyLimit = 1024 * 1024;
export const problemPrefix = 'urn:retrysafe:problem:';
/** Statuses of refusals made before the handler ran: none of them may be stored as a response. */
const refusalStatuses = [400, 413, 414, 415, 422, 431];

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

// ---------------------------------------------------------------------------------------------
// One service per file, checked after every case.

export interface HostileService {
  readonly service: StartedService;
  /** The throwaway PostgreSQL database, when the service runs on one. */
  readonly postgres: TestDatabase | undefined;
  send(request: RawRequest): Promise<Exchange>;
  sendBytes(bytes: Buffer, head: boolean, afterWrite: 'wait' | 'end' | 'abort'): Promise<Answer | undefined>;
  /**
   * The answer must exist (unless `mayClose`), never be 5xx, be one of `allowed`, and every 4xx
   * must be problem+json with type, title, status equal to the HTTP status, and detail.
   * 201/303 answers are remembered as this case's legitimate creations.
   */
  expectAnswer(exchange: Exchange, allowed: readonly number[], options?: { mayClose?: boolean }): Answer;
  /** Creates a user for the running case only. */
  createFixture(): Promise<Fixture>;
  /** Runs a fast-check property with the fixed seed, counting its runs under `category`. */
  check<T>(
    category: string,
    arbitrary: fc.Arbitrary<T>,
    numRuns: number,
    run: (value: T) => Promise<void>,
  ): Promise<void>;
  expectServiceUp(): Promise<void>;
}

interface CaseLedger {
  users: Set<string>;
  orders: Set<string>;
  /** Rows that existed before the case began. */
  before: { users: Set<string>; orders: Set<string> };
  fixtures: Fixture[];
  /** Index of the first log line written during the case. */
  firstLogLine: number;
}

interface Rows {
  users: string[];
  orders: string[];
  claimed: number;
  /** Distinct statuses of completed idempotency records. */
  storedStatuses: number[];
}

/**
 * Starts one service for the calling test file (SQLite by default) and, after every case,
 * checks that it is still up and that the case left nothing half-written: every new row came
 * from a 2xx the case saw, no idempotency claim is left, no refusal was stored as a response,
 * the case's fixtures are unchanged, and nothing was logged as an error.
 */
export function hostileService(options: { postgres?: boolean } = {}): HostileService {
  let started: StartedService | undefined;
  let postgres: TestDatabase | undefined;
  let http: RawHttp | undefined;
  let ledger: CaseLedger | undefined;
  const tried = new Map<string, number>();

  const service = (): StartedService => {
    if (started === undefined) throw new Error('the hostile service is not running (use it inside a case)');
    return started;
  };
  const client = (): RawHttp => {
    if (http === undefined) throw new Error('the hostile service is not running (use it inside a case)');
    return http;
  };
  const currentCase = (): CaseLedger => {
    if (ledger === undefined) throw new Error('no case is running');
    return ledger;
  };

  const readRows = async (): Promise<Rows> => {
    if (postgres !== undefined) {
      const pool = postgres.pool;
      const ids = async (table: string) =>
        (await pool.query<{ id: string }>(`SELECT id::text AS id FROM ${table}`)).rows.map((r) => r.id);
      const claimed = await pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM retrysafe_idempotency WHERE state = 'claimed'",
      );
      const stored = await pool.query<{ status: number }>(
        "SELECT DISTINCT status FROM retrysafe_idempotency WHERE state = 'completed'",
      );
      return {
        users: await ids('users'),
        orders: await ids('orders'),
        claimed: claimed.rows[0]?.n ?? 0,
        storedStatuses: stored.rows.map((r) => Number(r.status)),
      };
    }
    const db = new Database(service().dbPath, { readonly: true, fileMustExist: true });
    try {
      return {
        users: db.prepare('SELECT id FROM users').pluck().all() as string[],
        orders: db.prepare('SELECT id FROM orders').pluck().all() as string[],
        claimed: db
          .prepare("SELECT count(*) FROM retrysafe_idempotency WHERE state = 'claimed'")
          .pluck()
          .get() as number,
        storedStatuses: db
          .prepare("SELECT DISTINCT status FROM retrysafe_idempotency WHERE state = 'completed'")
          .pluck()
          .all() as number[],
      };
    } finally {
      db.close();
    }
  };

  const errorLogs = (fromLine: number) =>
    service()
      .logs.slice(fromLine)
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((record) => Number(record.level) >= 50);

  const hostile: HostileService = {
    get service() {
      return service();
    },
    get postgres() {
      return postgres;
    },
    send: (request) => client().send(request),
    sendBytes: (bytes, head, afterWrite) => client().sendBytes(bytes, head, afterWrite),
    expectAnswer(exchange, allowed, expectOptions = {}) {
      const { answer, request } = exchange;
      if (!answer) {
        if (expectOptions.mayClose) return { status: 0, headers: {}, body: '' };
        throw new Error(`the server closed without an answer\n${describeExchange(exchange)}`);
      }
      const context = describeExchange(exchange);
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
        currentCase()[match![1] as 'users' | 'orders'].add(match![2]!);
      }
      return answer;
    },
    async createFixture() {
      const username = `fixture_${randomBytes(8).toString('hex')}`;
      const exchange = await hostile.send({
        method: 'POST',
        target: '/users',
        headers: [['Content-Type', 'application/json']],
        body: JSON.stringify({ username, email: 'fixture@example.com', bio: 'stays' }),
      });
      const answer = hostile.expectAnswer(exchange, [201]);
      const { id } = JSON.parse(answer.body) as { id: string };
      const fixture = { id, username, etag: answer.headers.etag!, text: answer.body };
      currentCase().fixtures.push(fixture);
      return fixture;
    },
    async check(category, arbitrary, numRuns, run) {
      await fc.assert(
        fc.asyncProperty(arbitrary, (value) => {
          tried.set(category, (tried.get(category) ?? 0) + 1);
          return run(value);
        }),
        { seed, numRuns },
      );
    },
    async expectServiceUp() {
      const target = service();
      expect(target.process.exitCode).toBeNull();
      expect(target.process.signalCode).toBeNull();
      const health = await fetch(new URL('/healthz', target.url));
      expect(health.status).toBe(200);
    },
  };

  beforeAll(async () => {
    if (options.postgres) {
      postgres = await createTestDatabase('retrysafe_hostile');
      started = await startService({ databaseUrl: postgres.url });
    } else {
      started = await startService();
    }
    http = rawHttp(started.url, { bodyLimitBytes: bodyLimit });
  });

  beforeEach(async () => {
    const rows = await readRows();
    ledger = {
      users: new Set(),
      orders: new Set(),
      before: { users: new Set(rows.users), orders: new Set(rows.orders) },
      fixtures: [],
      firstLogLine: service().logs.length,
    };
  });

  // Every case ends with the process alive and healthy, and nothing half-written.
  afterEach(async () => {
    const done = currentCase();
    ledger = undefined;
    await hostile.expectServiceUp();
    const rows = await readRows();
    for (const table of ['users', 'orders'] as const) {
      const created = done[table];
      const before = done.before[table];
      // Every new row came from a 2xx this case saw, and every creation it saw is a row.
      expect(
        rows[table].filter((id) => !before.has(id) && !created.has(id)),
        table,
      ).toEqual([]);
      expect(
        [...created].filter((id) => !rows[table].includes(id)),
        table,
      ).toEqual([]);
      expect(rows[table].length, table).toBe(new Set([...before, ...created]).size);
    }
    expect(rows.claimed).toBe(0);
    // Only answers the handler reached are stored: never a parse, media type, size or key refusal.
    expect(rows.storedStatuses.filter((status) => refusalStatuses.includes(status))).toEqual([]);
    for (const fixture of done.fixtures) {
      const read = await hostile.send({ target: `/users/${fixture.id}` });
      expect(read.answer?.body).toBe(fixture.text);
      expect(read.answer?.headers.etag).toBe(fixture.etag);
    }
    expect(errorLogs(done.firstLogLine)).toEqual([]);
  });

  afterAll(async () => {
    try {
      const total = [...tried.values()].reduce((sum, n) => sum + n, 0);
      const lines = [...tried].map(([category, n]) => `  ${category}: ${n}`);
      console.info(
        `hostile input: ${total} generated inputs (${http?.requests ?? 0} HTTP requests), seed ${seed}\n${lines.join('\n')}`,
      );
      // Log lines can arrive after their case ended: the whole run is checked once more.
      if (started !== undefined) expect(errorLogs(0)).toEqual([]);
    } finally {
      await started?.stop();
      await postgres?.drop();
    }
  });

  return hostile;
}
