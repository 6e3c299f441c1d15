// Unit tests for the idempotency engine, run against the memory store (writes in a SQLite
// transaction passed as `transaction`) and the SQLite store (writes in the store's own
// transaction): execute/replay/mismatch/in-use, leases, retention, rollback, reaping, options.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConflictError, type ProblemError, problemTypePrefix } from '../http/problem.js';
import { createMemoryStore } from '../stores/memory.js';
import { createSqliteStore, runSqliteTransaction, type SqliteDatabase } from '../stores/sqlite.js';
import {
  createIdempotencyEngine,
  type Execution,
  type IdempotencyEngine,
  type IdempotentRequest,
} from './engine.js';
import {
  IdempotencyKeyInUseError,
  IdempotencyKeyReuseError,
  IdempotencyLeaseLostError,
  IdempotencyStoreUnavailableError,
} from './errors.js';
import { toStoredResponse } from './response.js';
import type { IdempotencyRecord, IdempotencyStore, StoredResponse } from './store.js';

const startMs = 1_700_000_000_000;
const leaseMs = 10_000;
const retentionMs = 60_000;
const inUseRetryAfterMs = 5_000;

interface EngineSettings {
  leaseMs?: number;
  retentionMs?: number;
  inUseRetryAfterMs?: number;
}

interface Harness {
  /** Where the business table lives; work writes through this connection. */
  db: SqliteDatabase;
  store: IdempotencyStore<unknown>;
  engine: IdempotencyEngine<unknown>;
  record(scopeKey: string): IdempotencyRecord | undefined;
  recordCount(): number;
  clock: { nowMs: number };
  close(): void;
}

type HarnessFactory = (settings?: EngineSettings) => Harness;

function businessTable(db: SqliteDatabase): void {
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL)');
}

const sqliteHarness: HarnessFactory = (settings = {}) => {
  const db = new Database(':memory:');
  const store = createSqliteStore({ database: db });
  businessTable(db);
  const clock = { nowMs: startMs };
  const engine = createIdempotencyEngine({
    store,
    leaseMs,
    retentionMs,
    inUseRetryAfterMs,
    ...settings,
    now: () => clock.nowMs,
  });
  return {
    db,
    store: store as IdempotencyStore<unknown>,
    engine: engine as unknown as IdempotencyEngine<unknown>,
    record: (scopeKey) => store.get(scopeKey),
    recordCount: () =>
      (db.prepare('SELECT count(*) AS n FROM retrysafe_idempotency').get() as { n: number }).n,
    clock,
    close: () => db.close(),
  };
};

const memoryHarness: HarnessFactory = (settings = {}) => {
  const db = new Database(':memory:');
  businessTable(db);
  const store = createMemoryStore();
  const clock = { nowMs: startMs };
  const engine = createIdempotencyEngine<undefined>({
    store,
    leaseMs,
    retentionMs,
    inUseRetryAfterMs,
    ...settings,
    transaction: (work) => runSqliteTransaction(db, () => work(undefined)),
    now: () => clock.nowMs,
  });
  return {
    db,
    store: store as IdempotencyStore<unknown>,
    engine: engine as unknown as IdempotencyEngine<unknown>,
    record: (scopeKey) => store.records.get(scopeKey),
    recordCount: () => store.records.size,
    clock,
    close: () => db.close(),
  };
};

function request(overrides: Partial<IdempotentRequest> = {}): IdempotentRequest {
  return {
    scope: 'tenant-a',
    method: 'POST',
    route: '/orders',
    path: '/orders',
    key: 'key-1',
    body: { sku: 'A-1', quantity: 2 },
    ...overrides,
  };
}

const created = (id: number): StoredResponse =>
  toStoredResponse({
    status: 201,
    headers: { location: `/orders/${id}`, etag: `"e${id}"` },
    body: { id, sku: 'A-1', quantity: 2 },
  });

function insertOrder(db: SqliteDatabase, note: string): number {
  return Number(db.prepare('INSERT INTO orders (note) VALUES (?)').run(note).lastInsertRowid);
}

function orderNotes(db: SqliteDatabase): string[] {
  return (db.prepare('SELECT note FROM orders ORDER BY id').all() as { note: string }[]).map((r) => r.note);
}

async function execute(h: Harness, req: IdempotentRequest = request()): Promise<Execution<unknown>> {
  const result = await h.engine.begin(req);
  if (result.outcome !== 'executed') throw new Error(`expected executed, got ${result.outcome}`);
  return result.execution;
}

const harnesses: [string, HarnessFactory][] = [
  ['memory store + SQLite transaction runner', memoryHarness],
  ['SQLite store', sqliteHarness],
];

describe.each(harnesses)('idempotency engine with the %s', (name, makeHarness) => {
  let h: Harness;
  const setup = (settings?: EngineSettings) => {
    h = makeHarness(settings);
    return h;
  };
  afterEach(() => h?.close());

  it('executes the first request, then replays the identical stored response', async () => {
    setup();
    const execution = await execute(h);
    const first = await execution.commit(() => created(insertOrder(h.db, 'first')));
    expect(execution.settled).toBe(true);

    const again = await h.engine.begin(request({ body: { quantity: 2, sku: 'A-1' } }));
    expect(again.outcome).toBe('replayed');
    if (again.outcome !== 'replayed') return;
    expect(again.recordId).toBe(execution.recordId);
    expect(again.response.status).toBe(201);
    expect(again.response.headers).toEqual(first.headers);
    expect(again.response.headers.location).toBe('/orders/1');
    expect(Buffer.from(again.response.body).equals(Buffer.from(first.body))).toBe(true);
    expect(orderNotes(h.db)).toEqual(['first']);
  });

  it('refuses the same key with a different body as a 422 idempotency-key-reuse mismatch, executing nothing', async () => {
    setup();
    const execution = await execute(h);
    await execution.commit(() => created(insertOrder(h.db, 'first')));

    const other = await h.engine.begin(request({ body: { sku: 'A-1', quantity: 3 } }));
    expect(other.outcome).toBe('mismatch');
    if (other.outcome !== 'mismatch') return;
    expect(other.error).toBeInstanceOf(IdempotencyKeyReuseError);
    expect(other.error.status).toBe(422);
    expect(other.error.type.endsWith('idempotency-key-reuse')).toBe(true);
    // The original record is untouched and still replays.
    expect((await h.engine.begin(request())).outcome).toBe('replayed');
    expect(orderNotes(h.db)).toEqual(['first']);
  });

  it('refuses the same key on a different concrete path of the same route as a mismatch', async () => {
    setup();
    const put = request({ method: 'PUT', route: '/users/:id', path: '/users/1' });
    await (await execute(h, put)).commit(() => created(1));
    const other = await h.engine.begin({ ...put, path: '/users/2' });
    expect(other.outcome).toBe('mismatch');
  });

  it('refuses a different body while the first is still claimed as a mismatch, not in_use', async () => {
    setup();
    await execute(h);
    expect((await h.engine.begin(request({ body: { other: true } }))).outcome).toBe('mismatch');
  });

  it('keeps keys apart across scopes, methods and routes', async () => {
    setup();
    await (await execute(h)).commit(() => created(1));
    for (const other of [
      request({ scope: 'tenant-b' }),
      request({ route: '/invoices', path: '/invoices' }),
      request({ method: 'PUT' }),
    ]) {
      expect((await h.engine.begin(other)).outcome).toBe('executed');
    }
    expect(h.recordCount()).toBe(4);
  });

  it('treats the method case-insensitively in the record scope', async () => {
    setup();
    await (await execute(h)).commit(() => created(1));
    expect((await h.engine.begin(request({ method: 'post' }))).outcome).toBe('replayed');
  });

  it('answers in_use while the key is claimed, with Retry-After between 1 s and inUseRetryAfterMs', async () => {
    setup();
    await execute(h);
    const during = await h.engine.begin(request());
    expect(during.outcome).toBe('in_use');
    if (during.outcome !== 'in_use') return;
    expect(during.error).toBeInstanceOf(IdempotencyKeyInUseError);
    expect(during.error.status).toBe(409);
    expect(during.error.type).toBe(`${problemTypePrefix}idempotency-key-in-use`);
    // 10 s of lease left, capped by inUseRetryAfterMs (5 s).
    expect(during.error.retryAfterSeconds).toBe(inUseRetryAfterMs / 1000);
    expect(during.error.headers['retry-after']).toBe('5');

    h.clock.nowMs = startMs + leaseMs - 1_500;
    const late = await h.engine.begin(request());
    if (late.outcome !== 'in_use') throw new Error(`expected in_use, got ${late.outcome}`);
    expect(late.error.retryAfterSeconds).toBe(2);

    h.clock.nowMs = startMs + leaseMs - 1;
    const last = await h.engine.begin(request());
    if (last.outcome !== 'in_use') throw new Error(`expected in_use, got ${last.outcome}`);
    expect(last.error.retryAfterSeconds).toBe(1);
  });

  it('never sends Retry-After below 1 s, even with a sub-second inUseRetryAfterMs', async () => {
    setup({ inUseRetryAfterMs: 200 });
    await execute(h);
    const during = await h.engine.begin(request());
    if (during.outcome !== 'in_use') throw new Error(`expected in_use, got ${during.outcome}`);
    expect(during.error.retryAfterSeconds).toBe(1);
  });

  it('lets a retry take over a claim whose lease expired, keeping the recordId', async () => {
    setup();
    const first = await execute(h);
    h.clock.nowMs = startMs + leaseMs;
    const second = await execute(h);
    expect(second.recordId).toBe(first.recordId);
    expect(second.token).not.toBe(first.token);
  });

  it('does not let a different body take over an expired lease', async () => {
    setup();
    await execute(h);
    h.clock.nowMs = startMs + leaseMs;
    expect((await h.engine.begin(request({ body: { sku: 'B' } }))).outcome).toBe('mismatch');
  });

  it('fails the overtaken execution with IdempotencyLeaseLostError and keeps the new claim', async () => {
    setup();
    const first = await execute(h);
    h.clock.nowMs = startMs + leaseMs + 1;
    const second = await execute(h);

    await expect(first.commit(() => created(insertOrder(h.db, 'slow')))).rejects.toBeInstanceOf(
      IdempotencyLeaseLostError,
    );
    expect(first.settled).toBe(true);

    const answer = await second.commit(() => created(insertOrder(h.db, 'retry')));
    expect(answer.status).toBe(201);
    const replay = await h.engine.begin(request());
    if (replay.outcome !== 'replayed') throw new Error(`expected replayed, got ${replay.outcome}`);
    expect(replay.recordId).toBe(first.recordId);
    expect(Buffer.from(replay.response.body).equals(Buffer.from(answer.body))).toBe(true);
  });

  it('starts afresh with a new recordId once the retention window is over', async () => {
    setup();
    const first = await execute(h);
    await first.commit(() => created(1));
    h.clock.nowMs = startMs + retentionMs - 1;
    expect((await h.engine.begin(request())).outcome).toBe('replayed');
    h.clock.nowMs = startMs + retentionMs;
    const fresh = await execute(h);
    expect(fresh.recordId).not.toBe(first.recordId);
  });

  it('lets a different body reuse a key whose retention is over', async () => {
    setup();
    await (await execute(h)).commit(() => created(1));
    h.clock.nowMs = startMs + retentionMs;
    expect((await h.engine.begin(request({ body: { sku: 'Z' } }))).outcome).toBe('executed');
  });

  it('counts retention from completion, not from the claim', async () => {
    setup();
    const execution = await execute(h);
    h.clock.nowMs = startMs + 5_000;
    await execution.commit(() => created(1));
    h.clock.nowMs = startMs + retentionMs + 4_999;
    expect((await h.engine.begin(request())).outcome).toBe('replayed');
  });

  it('rolls back the writes of work that throws, releases the claim, and lets the next request execute', async () => {
    setup();
    const execution = await execute(h);
    const boom = new Error('handler failed');
    await expect(
      execution.commit(() => {
        insertOrder(h.db, 'half-done');
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(execution.settled).toBe(true);
    expect(orderNotes(h.db)).toEqual([]);
    expect(h.record(execution.scopeKey)).toMatchObject({ state: 'released', recordId: execution.recordId });

    const retry = await execute(h);
    await retry.commit(() => created(insertOrder(h.db, 'retry')));
    expect(orderNotes(h.db)).toEqual(['retry']);
  });

  it('releases the claim and returns the 500 when work answers 500 (claim side)', async () => {
    setup();
    const execution = await execute(h);
    const answer = await execution.commit(() => toStoredResponse({ status: 500, body: { oops: true } }));
    expect(answer.status).toBe(500);
    expect(execution.settled).toBe(true);
    expect(h.record(execution.scopeKey)).toMatchObject({ state: 'released', recordId: execution.recordId });
    expect((await h.engine.begin(request())).outcome).toBe('executed');
  });

  it('releases on complete() of a response >= 500', async () => {
    setup();
    const execution = await execute(h);
    await execution.complete(toStoredResponse({ status: 503, body: 'later' }));
    expect(execution.settled).toBe(true);
    expect(h.record(execution.scopeKey)).toMatchObject({ state: 'released', recordId: execution.recordId });
    expect((await h.engine.begin(request())).outcome).toBe('executed');
  });

  it('stores a response given to complete() and replays it', async () => {
    setup();
    const execution = await execute(h);
    await execution.complete(toStoredResponse({ status: 409, body: { taken: true } }));
    const replay = await h.engine.begin(request());
    if (replay.outcome !== 'replayed') throw new Error(`expected replayed, got ${replay.outcome}`);
    expect(replay.response.status).toBe(409);
    expect(new TextDecoder().decode(replay.response.body)).toBe('{"taken":true}');
  });

  it('refuses to settle an execution twice', async () => {
    setup();
    const execution = await execute(h);
    await execution.commit(() => created(1));
    await expect(execution.commit(() => created(2))).rejects.toThrow(/already settled/);
    await expect(execution.complete(created(3))).rejects.toThrow(/already settled/);
  });

  it('makes complete() of an overtaken execution fail with IdempotencyLeaseLostError', async () => {
    setup();
    const first = await execute(h);
    h.clock.nowMs = startMs + leaseMs;
    await execute(h);
    await expect(first.complete(created(1))).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
  });

  it('does not let an overtaken execution release the new claim', async () => {
    setup();
    const first = await execute(h);
    h.clock.nowMs = startMs + leaseMs;
    const second = await execute(h);
    await first.release();
    expect(h.record(second.scopeKey)?.state).toBe('claimed');
    expect((await h.engine.begin(request())).outcome).toBe('in_use');
  });

  it('reaps expired records in bounded batches and keeps live ones', async () => {
    setup();
    for (let i = 0; i < 10; i++)
      await (await execute(h, request({ key: `old-${i}` }))).commit(() => created(i));
    h.clock.nowMs = startMs + retentionMs;
    await (await execute(h, request({ key: 'live' }))).commit(() => created(99));
    const reap = vi.spyOn(h.store, 'reap');

    expect(await h.engine.reap({ batchSize: 3 })).toEqual({
      deleted: 10,
      // 3 + 3 + 3 + 1: runs until the first short batch, however many that takes.
      batches: 4,
      startedAtMs: h.clock.nowMs,
      durationMs: 0,
      caughtUp: true,
    });
    expect(reap.mock.calls.map(([, limit]) => limit)).toEqual([3, 3, 3, 3]);
    expect(h.recordCount()).toBe(1);
    expect((await h.engine.begin(request({ key: 'live' }))).outcome).toBe('replayed');
    expect(await h.engine.reap()).toMatchObject({ deleted: 0, batches: 1, caughtUp: true });
    expect(h.engine.reaperStats).toMatchObject({ runs: 2, deletedTotal: 10, runsBehind: 0 });
  });
  it('reaps at least once per retention when the retention is shorter than the default interval', async () => {
    vi.useFakeTimers();
    try {
      const store = createMemoryStore();
      const engine = createIdempotencyEngine({ store, leaseMs: 500, retentionMs: 2_000 });
      const reap = vi.spyOn(store, 'reap');
      const stop = engine.startReaper();
      await vi.advanceTimersByTimeAsync(2_000);
      expect(reap).toHaveBeenCalledTimes(1);
      stop();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(reap).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it(`${name}: surfaces a store failure inside commit as IdempotencyStoreUnavailableError (503)`, async () => {
    setup();
    const execution = await execute(h);
    const complete = vi.spyOn(h.store, 'complete').mockRejectedValueOnce(new Error('disk full'));
    const error = await execution.commit(() => created(insertOrder(h.db, 'x'))).catch((e: unknown) => e);
    complete.mockRestore();
    expect(error).toBeInstanceOf(IdempotencyStoreUnavailableError);
    expect((error as ProblemError).status).toBe(503);
  });
});

// The two checks below are shared by the passing SQLite tests and the it.fails memory tests.
async function checkFiveHundredRolledBack(h: Harness): Promise<void> {
  const execution = await execute(h);
  const answer = await execution.commit(() => {
    insertOrder(h.db, 'half-done');
    return toStoredResponse({ status: 500, body: { oops: true } });
  });
  expect(answer.status).toBe(500);
  expect(orderNotes(h.db)).toEqual([]);
  expect(h.record(execution.scopeKey)).toMatchObject({ state: 'released', recordId: execution.recordId });
  expect((await h.engine.begin(request())).outcome).toBe('executed');
}

async function checkFourXxKeepsClaim(h: Harness): Promise<void> {
  const execution = await execute(h);
  const clash = new ConflictError('username taken', 'username-taken');
  await expect(
    execution.commit(() => {
      insertOrder(h.db, 'half-done');
      throw clash;
    }),
  ).rejects.toBe(clash);
  expect(orderNotes(h.db)).toEqual([]);
  expect(execution.settled).toBe(false);
  expect(h.record(execution.scopeKey)?.state).toBe('claimed');

  await execution.complete(toStoredResponse({ status: 409, body: clash.toProblem() }));
  const replay = await h.engine.begin(request());
  if (replay.outcome !== 'replayed') throw new Error(`expected replayed, got ${replay.outcome}`);
  expect(replay.response.status).toBe(409);
}

describe('idempotency engine with a store that has no transaction of its own', () => {
  // Regression (was a bug in engine.ts, Execution#commitOutsideStore): the `transaction` runner is handed work that
  // returns the 500 normally, so the runner commits its writes; only the claim is released.
  it('rolls back the writes of work that answers 500', async () => {
    const h = memoryHarness();
    try {
      await checkFiveHundredRolledBack(h);
    } finally {
      h.close();
    }
  });

  // Regression (was a bug in engine.ts, Execution#commitOutsideStore): every throw releases the claim, including a
  // ProblemError < 500, so complete() then throws "already settled" and the 4xx is never stored.
  it('keeps the claim open after a thrown 4xx ProblemError so complete() can store it', async () => {
    const h = memoryHarness();
    try {
      await checkFourXxKeepsClaim(h);
    } finally {
      h.close();
    }
  });

  it('runs work with an undefined transaction when no runner is given, then stores the response', async () => {
    const store = createMemoryStore();
    const engine = createIdempotencyEngine({ store, now: () => startMs });
    const result = await engine.begin(request());
    if (result.outcome !== 'executed') throw new Error('expected executed');
    const seen: unknown[] = [];
    await result.execution.commit((tx) => {
      seen.push(tx);
      return created(1);
    });
    expect(seen).toEqual([undefined]);
    expect((await engine.begin(request())).outcome).toBe('replayed');
  });
});

describe('the SQLite store, whose transaction holds the business rows too', () => {
  it('rolls back the writes of work that answers 500, releases the claim and returns the 500', async () => {
    const h = sqliteHarness();
    try {
      await checkFiveHundredRolledBack(h);
    } finally {
      h.close();
    }
  });

  it('keeps the claim open after a thrown 4xx ProblemError, with the writes rolled back, so complete() stores the 4xx', async () => {
    const h = sqliteHarness();
    try {
      await checkFourXxKeepsClaim(h);
    } finally {
      h.close();
    }
  });

  it('rolls back every write of an execution whose lease was taken over', async () => {
    const h = sqliteHarness();
    try {
      const first = await execute(h);
      h.clock.nowMs = startMs + leaseMs;
      const second = await execute(h);
      await expect(first.commit(() => created(insertOrder(h.db, 'slow')))).rejects.toBeInstanceOf(
        IdempotencyLeaseLostError,
      );
      expect(orderNotes(h.db)).toEqual([]);
      await second.commit(() => created(insertOrder(h.db, 'retry')));
      expect(orderNotes(h.db)).toEqual(['retry']);
    } finally {
      h.close();
    }
  });

  it('gives the handler the store connection as its transaction', async () => {
    const h = sqliteHarness();
    try {
      const execution = await execute(h);
      await execution.commit((tx) => {
        expect(tx).toBe(h.db);
        expect(h.db.inTransaction).toBe(true);
        return created(1);
      });
      expect(h.db.inTransaction).toBe(false);
    } finally {
      h.close();
    }
  });
});

describe('engine options', () => {
  const store = createMemoryStore();

  it.each([
    ['leaseMs', { leaseMs: 0 }],
    ['leaseMs', { leaseMs: -1 }],
    ['leaseMs', { leaseMs: Number.NaN }],
    ['leaseMs', { leaseMs: Number.POSITIVE_INFINITY }],
    ['retentionMs', { retentionMs: 0 }],
    ['retentionMs', { retentionMs: -60_000 }],
    ['retentionMs', { retentionMs: Number.NaN }],
    ['inUseRetryAfterMs', { inUseRetryAfterMs: 0 }],
  ])('throws a TypeError naming %s for %o', (optionName, options) => {
    expect(() => createIdempotencyEngine({ store, ...options })).toThrow(TypeError);
    expect(() => createIdempotencyEngine({ store, ...options })).toThrow(optionName);
  });

  it('throws a TypeError when retentionMs is shorter than leaseMs', () => {
    expect(() => createIdempotencyEngine({ store, leaseMs: 10_000, retentionMs: 9_999 })).toThrow(TypeError);
  });

  it('throws a TypeError when a store with its own transactions also gets a transaction runner', () => {
    const db = new Database(':memory:');
    const sqlite = createSqliteStore({ database: db });
    expect(() => createIdempotencyEngine({ store: sqlite, transaction: (work) => work(db) })).toThrow(
      TypeError,
    );
    db.close();
  });

  it('fills in the documented defaults', () => {
    const engine = createIdempotencyEngine({ store });
    expect(engine.options.leaseMs).toBe(60_000);
    expect(engine.options.retentionMs).toBe(24 * 60 * 60 * 1000);
    expect(engine.options.inUseRetryAfterMs).toBe(1_000);
  });
});

describe('an unreachable store', () => {
  it('turns a claim that throws into IdempotencyStoreUnavailableError (503 with Retry-After)', async () => {
    const down = new Error('connection refused');
    const failing: IdempotencyStore<undefined> = {
      claim: () => Promise.reject(down),
      complete: () => Promise.resolve(false),
      release: () => Promise.resolve(),
      reap: () => Promise.resolve(0),
    };
    const engine = createIdempotencyEngine({ store: failing });
    const error = await engine.begin(request()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyStoreUnavailableError);
    const problem = error as IdempotencyStoreUnavailableError;
    expect(problem.status).toBe(503);
    expect(problem.type).toBe(`${problemTypePrefix}idempotency-store-unavailable`);
    expect(Number(problem.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(problem.cause).toBe(down);
  });

  it('leaves the claim to its lease when release fails, without throwing', async () => {
    const store = createMemoryStore();
    const engine = createIdempotencyEngine({ store, now: () => startMs });
    const result = await engine.begin(request());
    if (result.outcome !== 'executed') throw new Error('expected executed');
    vi.spyOn(store, 'release').mockRejectedValueOnce(new Error('gone'));
    await expect(result.execution.release()).resolves.toBeUndefined();
    expect(result.execution.settled).toBe(true);
    expect(store.records.size).toBe(1);
  });
});

describe('the reaper keeps up (it removed at most 10,000 records a minute)', () => {
  /** A store whose every `reap` call finds a full batch and takes `batchMs` on the fake clock. */
  function endlessBacklog(clock: { nowMs: number }, batchMs: number) {
    const store = createMemoryStore();
    const calls: number[] = [];
    store.reap = async (_nowMs, limit) => {
      calls.push(limit);
      clock.nowMs += batchMs;
      return limit;
    };
    return { store, calls };
  }

  it('runs past 20 batches until caught up, on real SQLite', async () => {
    const db = new Database(':memory:');
    const store = createSqliteStore({ database: db });
    const clock = { nowMs: startMs };
    const engine = createIdempotencyEngine({ store, leaseMs, retentionMs, now: () => clock.nowMs });
    try {
      for (let i = 0; i < 45; i++) await engine.begin(request({ key: `old-${i}` }));
      clock.nowMs += retentionMs;
      const run = await engine.reap({ batchSize: 2 });
      // 22 full batches and a short one: the old cap of 20 batches left 5 records behind.
      expect(run).toMatchObject({ deleted: 45, batches: 23, caughtUp: true });
      expect((db.prepare('SELECT count(*) AS n FROM retrysafe_idempotency').get() as { n: number }).n).toBe(
        0,
      );
    } finally {
      await store.close();
    }
  });

  it('bounds a run by time on the engine clock, not by a count, and reports it as behind', async () => {
    const clock = { nowMs: startMs };
    const { store, calls } = endlessBacklog(clock, 100);
    const engine = createIdempotencyEngine({ store, leaseMs, retentionMs, now: () => clock.nowMs });
    const run = await engine.reap({ batchSize: 50, maxRunMs: 1_000 });
    expect(run).toEqual({
      deleted: 500,
      batches: 10,
      startedAtMs: startMs,
      durationMs: 1_000,
      caughtUp: false,
    });
    expect(calls).toHaveLength(10);
    expect(engine.reaperStats).toEqual({ runs: 1, deletedTotal: 500, runsBehind: 1, lastRun: run });
    await expect(engine.reap({ maxRunMs: 0 })).rejects.toThrow(TypeError);
  });

  it('yields to the event loop between batches', async () => {
    const clock = { nowMs: startMs };
    const { store, calls } = endlessBacklog(clock, 10);
    const engine = createIdempotencyEngine({ store, leaseMs, retentionMs, now: () => clock.nowMs });
    const running = engine.reap({ batchSize: 1, maxRunMs: 1_000 });
    const seen: number[] = [];
    // Each turn of the event loop sees at most one more batch: the run never monopolises it.
    for (let turn = 0; turn < 5; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(calls.length);
    }
    expect(seen.every((count, i) => count <= i + 2)).toBe(true);
    expect((await running).batches).toBe(100);
  });

  it('follows a run that ended behind with another a second later, and reports every run', async () => {
    vi.useFakeTimers();
    try {
      const clock = { nowMs: startMs };
      const { store, calls } = endlessBacklog(clock, 100);
      const engine = createIdempotencyEngine({ store, leaseMs, retentionMs, now: () => clock.nowMs });
      const runs: unknown[] = [];
      const stop = engine.startReaper({ intervalMs: 60_000, maxRunMs: 300, onReap: (run) => runs.push(run) });
      await vi.advanceTimersByTimeAsync(60_000);
      await vi.waitFor(() => expect(runs).toHaveLength(1));
      await vi.advanceTimersByTimeAsync(1_000);
      await vi.waitFor(() => expect(runs).toHaveLength(2));
      expect(runs[1]).toMatchObject({ batches: 3, caughtUp: false });
      stop();
      const after = calls.length;
      await vi.advanceTimersByTimeAsync(120_000);
      expect(calls.length).toBe(after);
      expect(engine.reaperStats).toMatchObject({ runs: 2, runsBehind: 2 });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('bounds on what one tenant may store', () => {
  it('validates maxRecordsPerScope and maxStoredResponseBytes, with documented defaults (no bound)', () => {
    const store = createMemoryStore();
    expect(createIdempotencyEngine({ store }).options).toMatchObject({
      maxRecordsPerScope: Number.POSITIVE_INFINITY,
      maxStoredResponseBytes: 1024 * 1024,
    });
    for (const maxRecordsPerScope of [0, -1, 1.5, Number.NaN]) {
      expect(() => createIdempotencyEngine({ store, maxRecordsPerScope })).toThrow(TypeError);
    }
    expect(() => createIdempotencyEngine({ store, maxStoredResponseBytes: -1 })).toThrow(TypeError);
    expect(() =>
      createIdempotencyEngine({ store, maxRecordsPerScope: Number.POSITIVE_INFINITY }),
    ).not.toThrow();
  });

  it('asks the store for no bound when maxRecordsPerScope is Infinity, and for the tenant bound otherwise', async () => {
    const store = createMemoryStore();
    const claim = vi.spyOn(store, 'claim');
    await createIdempotencyEngine({ store, maxRecordsPerScope: Number.POSITIVE_INFINITY }).begin(request());
    expect(claim.mock.calls[0]![0].scopeLimit).toBeUndefined();
    await createIdempotencyEngine({ store, maxRecordsPerScope: 7 }).begin(request({ key: 'other' }));
    expect(claim.mock.calls[1]![0].scopeLimit).toEqual({ scope: 'tenant-a', maxRecords: 7 });
  });

  it('never answers a 503 "not executed" once the work ran and committed outside the store', async () => {
    const db = new Database(':memory:');
    businessTable(db);
    const store = createMemoryStore();
    store.complete = async () => {
      throw new Error('OOM command not allowed when used memory > maxmemory');
    };
    const engine = createIdempotencyEngine<SqliteDatabase>({
      store: store as unknown as IdempotencyStore<SqliteDatabase>,
      transaction: (work) => runSqliteTransaction(db, work),
    });
    const begun = await engine.begin(request());
    if (begun.outcome !== 'executed') throw new Error(begun.outcome);
    const error = await begun.execution
      .commit(() => created(insertOrder(db, 'kept')))
      .then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
    expect(orderNotes(db)).toEqual(['kept']);
    expect(error).toBeInstanceOf(IdempotencyStoreUnavailableError);
    expect(error).toMatchObject({ status: 503, writes: 'may-be-kept' });
    expect((error as Error).message).not.toMatch(/not executed/);
    db.close();
  });
});
