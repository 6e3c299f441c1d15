// The adapter contract suite: one set of cases every framework adapter must pass, over real
// HTTP on loopback, backed by a real SQLite store whose business rows are written through
// `commit(tx => …)` on the same database. Each framework's file only builds an app from the
// neutral routes below; every case runs against a fresh app and database.
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, problemTypePrefix } from '../../src/http/problem.js';
import type { IdempotencyMode } from '../../src/idempotency/lifecycle.js';
import type { ResponseDraft } from '../../src/idempotency/response.js';
import {
  createSqliteStore,
  type SqliteDatabase,
  type SqliteIdempotencyStore,
} from '../../src/stores/sqlite.js';

/** What every adapter gives a handler, in the contract's own words. */
export interface ContractContext {
  body: unknown;
  rawBody: Uint8Array;
  key: string | undefined;
  idFor(name: string): string;
  /** The adapter's transactional write; its result is what the handler returns. */
  commit(work: (db: SqliteDatabase) => ResponseDraft): Promise<unknown>;
}

export interface ContractRoute {
  method: 'GET' | 'POST';
  /** With `:param` segments, which every framework here reads the same. */
  path: string;
  mode: IdempotencyMode;
  /** Media types beyond JSON the route accepts (the app registers a parser where its framework needs one). */
  accepts?: readonly string[];
  /** Returns what `commit` returned, or a draft; may throw. */
  handler(context: ContractContext): Promise<unknown>;
}

export interface ContractApp {
  store: SqliteIdempotencyStore;
  routes: readonly ContractRoute[];
  /** Scope = the `x-tenant` header, or `anonymous`. */
  bodyLimitBytes: number;
  /** Where the adapter reports failures it answered as 5xx. */
  onError(error: unknown): void;
}

export interface RunningApp {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

export type AdapterFactory = (app: ContractApp) => Promise<RunningApp>;

export const contractBodyLimitBytes = 64 * 1024;

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/** One request over a fresh loopback connection; `headers` may be raw pairs to repeat a field. */
function send(
  base: string,
  method: string,
  path: string,
  options: { headers?: OutgoingHttpHeaders | [string, string][]; body?: string | Uint8Array } = {},
): Promise<HttpAnswer> {
  const url = new URL(path, base);
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  // Raw pairs (so a field can repeat): Node then adds no Host of its own.
  const headers: string[] = ['host', url.host];
  const pairs = Array.isArray(options.headers) ? options.headers : Object.entries(options.headers ?? {});
  for (const [name, value] of pairs) headers.push(name, String(value));
  if (body !== undefined) headers.push('content-length', String(body.byteLength));
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const text = bytes.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: bytes,
            text,
            json: <T>() => JSON.parse(text) as T,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const json = (value: unknown, extra: Record<string, string> = {}) => ({
  headers: { 'content-type': 'application/json', ...extra },
  body: JSON.stringify(value),
});

function expectProblem(answer: HttpAnswer, status: number, type?: string): Record<string, unknown> {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = answer.json();
  expect(problem.status).toBe(status);
  expect(typeof problem.title).toBe('string');
  expect(typeof problem.detail).toBe('string');
  if (type !== undefined) expect(problem.type).toBe(problemTypePrefix + type);
  return problem;
}

/** A promise the /slow route waits on, and one that says it is waiting. */
function gate() {
  let reached!: () => void;
  let open!: () => void;
  return {
    reached: new Promise<void>((resolve) => {
      reached = resolve;
    }),
    opened: new Promise<void>((resolve) => {
      open = resolve;
    }),
    arrive: () => reached(),
    open: () => open(),
  };
}

export function describeAdapterContract(name: string, start: AdapterFactory): void {
  describe(`adapter contract: ${name}`, () => {
    let base: string;
    let running: RunningApp;
    let store: SqliteIdempotencyStore;
    let runs: Record<string, number>;
    let errors: unknown[];
    let slow: ReturnType<typeof gate>;

    const ran = (route: string) => {
      runs[route] = (runs[route] ?? 0) + 1;
      return runs[route];
    };
    const rows = () => (store.db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n;
    const insertOrder = (db: SqliteDatabase, id: string, body: unknown) => {
      db.prepare('INSERT INTO orders (id, body) VALUES (?, ?)').run(id, JSON.stringify(body ?? null));
    };
    const created = (context: ContractContext) => {
      const id = context.idFor('order');
      return context.commit((db) => {
        insertOrder(db, id, context.body);
        const representation = { id, order: context.body };
        return {
          status: 201,
          headers: { location: `/orders/${id}`, etag: `"${id}-v1"` },
          body: representation,
        };
      });
    };

    const routes: ContractRoute[] = [
      {
        method: 'POST',
        path: '/orders',
        mode: 'required',
        handler: async (context) => {
          ran('orders');
          return created(context);
        },
      },
      {
        method: 'GET',
        path: '/orders/:id',
        mode: 'off',
        handler: async () => ({ status: 200, body: { ok: true } }),
      },
      {
        method: 'POST',
        path: '/slow',
        mode: 'required',
        handler: async (context) => {
          ran('slow');
          slow.arrive();
          await slow.opened;
          return created(context);
        },
      },
      {
        method: 'POST',
        path: '/flaky-status',
        mode: 'required',
        handler: async (context) => {
          const attempt = ran('flaky-status');
          if (attempt > 1) return created(context);
          return context.commit((db) => {
            insertOrder(db, context.idFor('order'), context.body);
            return { status: 503, headers: { 'retry-after': 1 }, body: { try: 'later' } };
          });
        },
      },
      {
        method: 'POST',
        path: '/flaky-throw',
        mode: 'required',
        handler: async (context) => {
          const attempt = ran('flaky-throw');
          if (attempt > 1) return created(context);
          return context.commit((db) => {
            insertOrder(db, context.idFor('order'), context.body);
            throw new Error('secret database detail');
          });
        },
      },
      {
        method: 'POST',
        path: '/taken',
        mode: 'required',
        handler: async () => {
          ran('taken');
          throw new ConflictError('That name is taken.', 'name-taken');
        },
      },
      {
        method: 'POST',
        path: '/blobs',
        mode: 'required',
        accepts: ['application/octet-stream', 'text/plain'],
        handler: async (context) => {
          ran('blobs');
          const text = typeof context.body === 'string';
          return context.commit((db) => {
            insertOrder(db, context.idFor('order'), context.rawBody.byteLength);
            return {
              status: 201,
              headers: { 'content-type': text ? 'text/plain; charset=utf-8' : 'application/octet-stream' },
              body: context.rawBody,
            };
          });
        },
      },
      {
        method: 'POST',
        path: '/notes',
        mode: 'optional',
        handler: async (context) => {
          ran('notes');
          const fail = (context.body as { fail?: boolean } | undefined)?.fail === true;
          return context.commit((db) => {
            insertOrder(db, context.idFor('note'), context.body);
            return fail ? { status: 500, body: { failed: true } } : { status: 201, body: { ok: true } };
          });
        },
      },
    ];

    beforeEach(async () => {
      runs = {};
      errors = [];
      slow = gate();
      store = createSqliteStore({ database: ':memory:' });
      store.db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY, body TEXT NOT NULL)');
      running = await start({
        store,
        routes,
        bodyLimitBytes: contractBodyLimitBytes,
        onError: (error) => errors.push(error),
      });
      base = running.url;
    });

    afterEach(async () => {
      slow.open();
      await running.close();
      await store.close();
    });

    const post = (path: string, key: string | undefined, value: unknown, tenant?: string) =>
      send(
        base,
        'POST',
        path,
        json(value, {
          ...(key === undefined ? {} : { 'idempotency-key': key }),
          ...(tenant === undefined ? {} : { 'x-tenant': tenant }),
        }),
      );

    it('replays the first answer: same status, body bytes, Location, ETag and content type, marked replayed', async () => {
      const first = await post('/orders', 'order-1', { sku: 'A-1', quantity: 2 });
      const retry = await post('/orders', 'order-1', { sku: 'A-1', quantity: 2 });
      expect(first.status).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body.equals(first.body)).toBe(true);
      expect(first.headers.location).toMatch(/^\/orders\/.+/);
      expect(retry.headers.location).toBe(first.headers.location);
      expect(retry.headers.etag).toBe(first.headers.etag);
      expect(first.headers['content-type']).toMatch(/^application\/json/);
      expect(retry.headers['content-type']).toBe(first.headers['content-type']);
      expect(runs.orders).toBe(1);
      expect(rows()).toBe(1);
    });

    it('answers 422 idempotency-key-reuse to the same key with another body, and runs nothing', async () => {
      expect((await post('/orders', 'reuse-1', { sku: 'A', quantity: 1 })).status).toBe(201);
      expectProblem(
        await post('/orders', 'reuse-1', { sku: 'A', quantity: 9 }),
        422,
        'idempotency-key-reuse',
      );
      expect(runs.orders).toBe(1);
      expect(rows()).toBe(1);
    });

    it('answers 409 idempotency-key-in-use with Retry-After while the first request runs', async () => {
      const first = post('/slow', 'slow-1', { sku: 'S', quantity: 1 });
      await slow.reached;
      const second = await post('/slow', 'slow-1', { sku: 'S', quantity: 1 });
      expectProblem(second, 409, 'idempotency-key-in-use');
      expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
      slow.open();
      expect((await first).status).toBe(201);
      expect(runs.slow).toBe(1);
      expect(rows()).toBe(1);
    });

    it('answers 400 to a missing, a malformed and a repeated key, and runs nothing', async () => {
      expectProblem(
        await post('/orders', undefined, { sku: 'A', quantity: 1 }),
        400,
        'idempotency-key-missing',
      );
      expectProblem(
        await post('/orders', 'has,comma', { sku: 'A', quantity: 1 }),
        400,
        'idempotency-key-invalid',
      );
      expectProblem(
        await post('/orders', 'x'.repeat(256), { sku: 'A', quantity: 1 }),
        400,
        'idempotency-key-invalid',
      );
      const repeated = await send(base, 'POST', '/orders', {
        headers: [
          ['content-type', 'application/json'],
          ['idempotency-key', 'twice-a'],
          ['idempotency-key', 'twice-b'],
        ],
        body: JSON.stringify({ sku: 'A', quantity: 1 }),
      });
      expectProblem(repeated, 400, 'idempotency-key-invalid');
      expect(runs.orders).toBeUndefined();
      expect(rows()).toBe(0);
    });

    it('rolls back a 5xx answer and frees its key: the retry executes and writes exactly one row', async () => {
      const first = await post('/flaky-status', 'flaky-1', { sku: 'F', quantity: 1 });
      expect(first.status).toBe(503);
      expect(rows()).toBe(0);
      const retry = await post('/flaky-status', 'flaky-1', { sku: 'F', quantity: 1 });
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(runs['flaky-status']).toBe(2);
      expect(rows()).toBe(1);
    });

    it('rolls back a throw and frees its key, answering a 500 problem that reveals nothing (and logging it)', async () => {
      const first = await post('/flaky-throw', 'throw-1', { sku: 'T', quantity: 1 });
      expectProblem(first, 500, 'server-error');
      expect(first.text).not.toContain('secret');
      expect(rows()).toBe(0);
      expect(errors.some((error) => (error as Error).message === 'secret database detail')).toBe(true);
      const retry = await post('/flaky-throw', 'throw-1', { sku: 'T', quantity: 1 });
      expect(retry.status).toBe(201);
      expect(runs['flaky-throw']).toBe(2);
      expect(rows()).toBe(1);
    });

    it('stores a thrown 4xx problem and replays it without running the handler again', async () => {
      const first = await post('/taken', 'taken-1', { name: 'ada' });
      expectProblem(first, 409, 'name-taken');
      const retry = await post('/taken', 'taken-1', { name: 'ada' });
      expect(retry.status).toBe(409);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body.equals(first.body)).toBe(true);
      expect(runs.taken).toBe(1);
    });

    it('lets 50 concurrent requests with one key cause exactly one effect; the others replay or get 409', async () => {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => post('/orders', 'burst-1', { sku: 'B', quantity: 5 })),
      );
      const executed = answers.filter(
        (a) => a.status === 201 && a.headers['idempotent-replayed'] === undefined,
      );
      const replayed = answers.filter((a) => a.status === 201 && a.headers['idempotent-replayed'] === 'true');
      const inUse = answers.filter((a) => a.status === 409);
      expect(executed).toHaveLength(1);
      expect(replayed.length + inUse.length).toBe(49);
      for (const answer of replayed) expect(answer.body.equals(executed[0]!.body)).toBe(true);
      for (const answer of inUse) expectProblem(answer, 409, 'idempotency-key-in-use');
      expect(runs.orders).toBe(1);
      expect(rows()).toBe(1);
    });

    it('keeps scopes apart: the same key under two tenants executes twice', async () => {
      const a = await post('/orders', 'shared-key', { sku: 'S', quantity: 1 }, 'tenant-a');
      const b = await post('/orders', 'shared-key', { sku: 'S', quantity: 1 }, 'tenant-b');
      expect(a.status).toBe(201);
      expect(b.status).toBe(201);
      expect(b.headers['idempotent-replayed']).toBeUndefined();
      expect(b.headers.location).not.toBe(a.headers.location);
      expect(runs.orders).toBe(2);
      expect(rows()).toBe(2);
    });

    it('round-trips a binary body with every byte value, first answer and replay', async () => {
      const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
      const request = {
        headers: { 'content-type': 'application/octet-stream', 'idempotency-key': 'bin-1' },
        body: bytes,
      };
      const first = await send(base, 'POST', '/blobs', request);
      const retry = await send(base, 'POST', '/blobs', request);
      expect(first.status, first.text).toBe(201);
      expect(first.headers['content-type']).toBe('application/octet-stream');
      expect(first.body.equals(bytes)).toBe(true);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body.equals(bytes)).toBe(true);
      const changed = Buffer.from(bytes);
      changed[511] = 0;
      expectProblem(
        await send(base, 'POST', '/blobs', { ...request, body: changed }),
        422,
        'idempotency-key-reuse',
      );
      expect(runs.blobs).toBe(1);
    });

    it('round-trips UTF-8 request and response bodies', async () => {
      const text = 'Zoë 🍣 — 你好, ¿qué tal? \u{1F600}';
      const request = {
        headers: { 'content-type': 'text/plain; charset=utf-8', 'idempotency-key': 'utf-1' },
        body: text,
      };
      const first = await send(base, 'POST', '/blobs', request);
      const retry = await send(base, 'POST', '/blobs', request);
      expect(first.status, first.text).toBe(201);
      expect(first.text).toBe(text);
      expect(retry.text).toBe(text);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      const order = await post('/orders', 'utf-2', { sku: 'Zoë-🍣', quantity: 1 });
      expect(order.json<{ order: { sku: string } }>().order.sku).toBe('Zoë-🍣');
    });

    it('fingerprints JSON regardless of key order', async () => {
      const first = await send(base, 'POST', '/orders', {
        headers: { 'content-type': 'application/json', 'idempotency-key': 'order-key' },
        body: '{"sku":"K","quantity":3}',
      });
      const reordered = await send(base, 'POST', '/orders', {
        headers: { 'content-type': 'application/json', 'idempotency-key': 'order-key' },
        body: '{ "quantity": 3, "sku": "K" }',
      });
      expect(first.status).toBe(201);
      expect(reordered.status).toBe(201);
      expect(reordered.headers['idempotent-replayed']).toBe('true');
      expect(runs.orders).toBe(1);
    });

    it('answers 404 problem+json for an unknown path', async () => {
      const answer = await send(base, 'GET', '/nothing-here');
      expectProblem(answer, 404, 'not-found');
      expect(answer.headers.allow).toBeUndefined();
    });

    it('answers 405 problem+json with Allow for a known path asked with another method', async () => {
      const item = await send(base, 'DELETE', '/orders/123');
      expectProblem(item, 405, 'method-not-allowed');
      expect(String(item.headers.allow).split(/,\s*/).sort()).toEqual(['GET', 'HEAD']);
      const collection = await send(base, 'GET', '/orders');
      expectProblem(collection, 405, 'method-not-allowed');
      expect(String(collection.headers.allow).split(/,\s*/)).toContain('POST');
    });

    it('answers 413 problem+json to a body over the limit, and runs nothing', async () => {
      const big = JSON.stringify({ sku: 'x'.repeat(contractBodyLimitBytes), quantity: 1 });
      expectProblem(
        await send(base, 'POST', '/orders', json(JSON.parse(big), { 'idempotency-key': 'big-1' })),
        413,
      );
      expect(runs.orders).toBeUndefined();
      expect(rows()).toBe(0);
    });

    it('answers 400 problem+json to a body that is not JSON, and stores nothing for its key', async () => {
      const broken = await send(base, 'POST', '/orders', {
        headers: { 'content-type': 'application/json', 'idempotency-key': 'broken-1' },
        body: '{"sku": "A", "quantity": ',
      });
      expectProblem(broken, 400);
      expect(runs.orders).toBeUndefined();
      // Refused before the handler: the key is still free for the corrected request.
      expect((await post('/orders', 'broken-1', { sku: 'A', quantity: 1 })).status).toBe(201);
    });

    it('answers 415 problem+json to a media type the route does not accept', async () => {
      const answer = await send(base, 'POST', '/orders', {
        headers: { 'content-type': 'application/xml', 'idempotency-key': 'xml-1' },
        body: '<order sku="A"/>',
      });
      expectProblem(answer, 415);
      expect(runs.orders).toBeUndefined();
    });

    it('runs a keyless request on an optional route in a transaction: a 5xx rolls its row back', async () => {
      const failed = await post('/notes', undefined, { fail: true });
      expect(failed.status).toBe(500);
      expect(rows()).toBe(0);
      const ok = await post('/notes', undefined, { fail: false });
      expect(ok.status).toBe(201);
      expect(rows()).toBe(1);
      const again = await post('/notes', undefined, { fail: false });
      expect(again.headers['idempotent-replayed']).toBeUndefined();
      expect(runs.notes).toBe(3);
      expect(rows()).toBe(2);
    });
  });
}
