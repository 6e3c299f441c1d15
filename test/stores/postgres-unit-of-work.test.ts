// The PostgreSQL unit of work and migration registry on the real server at 127.0.0.1:5432, in a
// throwaway database: connections that die mid-transaction (issue 10 item 1), migrations applied
// once under concurrency, refused when the database is ahead or an applied migration was edited,
// and statement names that stay unique under PostgreSQL's 63-byte limit.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdempotencyEngine } from '../../src/idempotency/engine.js';
import { AmbiguousCommitError, TransactionUnavailableError } from '../../src/idempotency/errors.js';
import {
  createPostgresStore,
  createPostgresUnitOfWork,
  MigrationChecksumMismatchError,
  MigrationVersionUnknownError,
  postgresStatementName,
} from '../../src/stores/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_uow');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

async function waitFor(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a PostgreSQL connection that dies inside a transaction', () => {
  it('pg_terminate_backend while a transaction is open: the process survives, a 503 error surfaces, the pool keeps working', async () => {
    const own = new pg.Pool({ connectionString: database.url, max: 1 });
    const unitOfWork = createPostgresUnitOfWork<pg.PoolClient>(own);
    await own.query('CREATE TABLE IF NOT EXISTS terminated_orders (id text PRIMARY KEY)');
    // Without the unit of work's listener the dead client's 'error' event is unhandled and
    // kills this very process (vitest reports it as an unhandled error and fails the run).
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const outcome = unitOfWork
        .transaction(async (tx) => {
          await tx.query('INSERT INTO terminated_orders (id) VALUES ($1)', ['o-1']);
          const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await pool.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
          // Idle in the transaction while the server ends the session, then try to go on.
          await new Promise((resolve) => setTimeout(resolve, 200));
          await tx.query('INSERT INTO terminated_orders (id) VALUES ($1)', ['o-2']);
          return 'committed';
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      const error = await outcome;
      expect(error).toBeInstanceOf(TransactionUnavailableError);
      expect(error).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
      expect(uncaught).toEqual([]);
      // The broken client was destroyed, not returned: the next transaction gets a fresh one.
      expect(
        await unitOfWork.transaction(async (tx) => (await tx.query('SELECT 1 AS one')).rows[0].one),
      ).toBe(1);
      const { rows } = await own.query('SELECT count(*)::int AS n FROM terminated_orders');
      expect(rows[0].n).toBe(0);
    } finally {
      process.off('uncaughtException', onUncaught);
      await own.end();
    }
  });

  it('a connection cut after COMMIT was sent surfaces as AmbiguousCommitError, never "nothing saved"', async () => {
    // A loopback proxy in front of the server that drops both sides once it has forwarded a COMMIT.
    const target = new URL(database.url);
    let cutAfterCommit = false;
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((client) => {
      const server = new Socket();
      sockets.add(client);
      sockets.add(server);
      server.connect(Number(target.port), target.hostname);
      client.on('data', (chunk) => {
        server.write(chunk);
        if (cutAfterCommit && chunk.includes('COMMIT')) {
          // Give the server the COMMIT, then cut before its answer can come back.
          setTimeout(() => {
            client.destroy();
            server.destroy();
          }, 0);
          server.pause();
        }
      });
      server.on('data', (chunk) => client.write(chunk));
      client.on('error', () => {});
      server.on('error', () => {});
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address() as { port: number };
    const viaProxy = new URL(database.url);
    viaProxy.port = String(address.port);
    const own = new pg.Pool({ connectionString: viaProxy.toString(), max: 1 });
    own.on('error', () => {});
    const unitOfWork = createPostgresUnitOfWork<pg.PoolClient>(own);
    try {
      await own.query('CREATE TABLE IF NOT EXISTS ambiguous_orders (id text PRIMARY KEY)');
      cutAfterCommit = true;
      const error = await unitOfWork
        .transaction(async (tx) => {
          await tx.query('INSERT INTO ambiguous_orders (id) VALUES ($1)', ['o-1']);
        })
        .then(
          () => undefined,
          (rejection: unknown) => rejection,
        );
      cutAfterCommit = false;
      expect(error).toBeInstanceOf(AmbiguousCommitError);
      expect(error).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
      expect((error as Error).message).not.toMatch(/nothing .* saved/);
      // The pool recovers through the proxy; the server itself committed (the COMMIT arrived).
      await waitFor(async () => {
        const { rows } = await pool.query('SELECT count(*)::int AS n FROM ambiguous_orders');
        return rows[0].n === 1;
      }, 'the forwarded COMMIT to land');
      expect((await own.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await own.end();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('a connection refused at checkout is a TransactionUnavailableError (nothing saved)', async () => {
    const down = new pg.Pool({
      host: '127.0.0.1',
      port: 1,
      user: 'postgres',
      connectionTimeoutMillis: 2_000,
    });
    down.on('error', () => {});
    try {
      const error = await createPostgresUnitOfWork(down)
        .transaction(async () => 'never')
        .catch((rejection: unknown) => rejection);
      expect(error).toBeInstanceOf(TransactionUnavailableError);
    } finally {
      await down.end();
    }
  });

  it('leaves no error listener behind on a client it returned to the pool', async () => {
    const own = new pg.Pool({ connectionString: database.url, max: 1 });
    const unitOfWork = createPostgresUnitOfWork<pg.PoolClient>(own);
    try {
      let held: pg.PoolClient | undefined;
      for (let run = 0; run < 20; run++) {
        await unitOfWork.transaction(async (tx) => {
          held = tx;
        });
      }
      // pg-pool's own idle listener only.
      expect(held!.listenerCount('error')).toBe(1);
    } finally {
      await own.end();
    }
  });
});

describe('the PostgreSQL migration registry', () => {
  const part = () => `test.part_${randomUUID().slice(0, 8)}`;

  it('applies each migration exactly once when several units of work on separate pools migrate at once', async () => {
    const name = part();
    const table = `counted_${name.slice(-8)}`;
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: database.url, max: 1 }));
    try {
      const reports = await Promise.all(
        pools.map((each) =>
          createPostgresUnitOfWork(each)
            .register(
              { part: name, version: 1, name: 'create', up: `CREATE TABLE ${table} (n int)` },
              { part: name, version: 2, name: 'count', up: `INSERT INTO ${table} VALUES (1)` },
            )
            .migrate(),
        ),
      );
      expect(reports.flatMap((report) => report.applied.map((m) => m.version)).sort()).toEqual([1, 2]);
      expect((await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(1);
      const applied = await createPostgresUnitOfWork(pool).applied();
      expect(applied.filter((row) => row.part === name).map((row) => [row.version, row.name])).toEqual([
        [1, 'create'],
        [2, 'count'],
      ]);
    } finally {
      await Promise.all(pools.map((each) => each.end()));
    }
  });

  it('refuses to run against a database migrated by a newer release, applying nothing', async () => {
    const name = part();
    const newer = createPostgresUnitOfWork(pool).register(
      { part: name, version: 1, name: 'one', up: 'SELECT 1' },
      { part: name, version: 2, name: 'two from the future', up: 'SELECT 2' },
    );
    await newer.migrate();
    const older = createPostgresUnitOfWork(pool).register(
      { part: name, version: 1, name: 'one', up: 'SELECT 1' },
      { part: `${name}_other`, version: 1, name: 'other', up: 'SELECT 3' },
    );
    const error = await older.migrate().catch((rejection: unknown) => rejection);
    expect(error).toBeInstanceOf(MigrationVersionUnknownError);
    expect((error as Error).message).toContain(`${name} v2 ("two from the future")`);
    expect((await older.applied()).some((row) => row.part === `${name}_other`)).toBe(false);
  });

  it('refuses an applied migration whose SQL was edited afterwards', async () => {
    const name = part();
    await createPostgresUnitOfWork(pool)
      .register({ part: name, version: 1, name: 'one', up: 'SELECT 1' })
      .migrate();
    const edited = createPostgresUnitOfWork(pool).register({
      part: name,
      version: 1,
      name: 'one',
      up: 'SELECT 1 + 1',
    });
    await expect(edited.migrate()).rejects.toBeInstanceOf(MigrationChecksumMismatchError);
  });

  it('adopts a records table created by the release before the registry, keeping its rows', async () => {
    const table = `legacy_${randomUUID().slice(0, 8)}`;
    // The DDL of the release before migrations, and a completed row as it wrote them.
    await pool.query(`CREATE TABLE ${table} (
      scope_key text PRIMARY KEY, record_id text NOT NULL, fingerprint text NOT NULL, token text NOT NULL,
      state text NOT NULL CHECK (state IN ('claimed', 'completed')), lease_expires_at_ms bigint NOT NULL,
      expires_at_ms bigint NOT NULL, status integer, headers jsonb, body bytea);
      CREATE INDEX ${table}_expires_at_ms ON ${table} (expires_at_ms);`);
    const expiresAtMs = Date.now() + 60_000;
    await pool.query(
      `INSERT INTO ${table} VALUES ('s-1', 'r-1', 'fp', 't', 'completed', 0, $1, 201, '{"etag":"\\"1\\""}', '\\x00ff')`,
      [expiresAtMs],
    );
    const store = createPostgresStore({ pool, tableName: table });
    await store.migrate();
    expect(await store.get('s-1')).toEqual({
      state: 'completed',
      scopeKey: 's-1',
      recordId: 'r-1',
      fingerprint: 'fp',
      expiresAtMs,
      formatVersion: 1,
      data: {},
      response: { status: 201, headers: { etag: '"1"' }, body: new Uint8Array([0, 255]) },
    });
  });
});

describe('prepared-statement names (PostgreSQL cuts identifiers at 63 bytes)', () => {
  it('a 55-character table name runs claim, complete, release, reap and replay without 42P05 or a length warning', async () => {
    const tableName = `a_table_name_of_fifty_five_characters_${randomUUID().replaceAll('-', '').slice(0, 17)}`;
    expect(tableName).toHaveLength(55);
    const kinds = ['insertOrRead', 'takeOver', 'get', 'complete', 'saveData', 'release', 'reap'];
    const names = kinds.map((kind) => postgresStatementName(tableName, kind));
    expect(new Set(names.map((name) => name.slice(0, 63))).size).toBe(kinds.length);
    for (const name of names) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    // One connection, so every statement is prepared on the same session and a collision shows.
    const own = new pg.Pool({ connectionString: database.url, max: 1 });
    const originalWarn = console.warn;
    console.warn = (...args: unknown[]) => warnings.push(args.map(String).join(' '));
    try {
      const store = createPostgresStore<pg.PoolClient>({ pool: own, tableName });
      await store.migrate();
      let nowMs = Date.now();
      const engine = createIdempotencyEngine<pg.PoolClient>({
        store,
        leaseMs: 1_000,
        retentionMs: 10_000,
        now: () => nowMs,
      });
      const request = {
        scope: 'tenant',
        method: 'POST',
        route: '/orders',
        path: '/orders',
        key: 'k-1',
        body: { sku: 'A' },
      };
      const first = await engine.begin(request);
      if (first.outcome !== 'executed') throw new Error(`expected execution, got ${first.outcome}`);
      await first.execution.release();
      const second = await engine.begin(request);
      if (second.outcome !== 'executed') throw new Error(`expected execution, got ${second.outcome}`);
      const body = new TextEncoder().encode('created');
      await second.execution.commit(async () => ({ status: 201, headers: {}, body }));
      const replay = await engine.begin(request);
      expect(replay).toMatchObject({ outcome: 'replayed', response: { status: 201, body } });
      nowMs += 20_000;
      expect(await store.reap(nowMs, 10)).toBe(1);
      expect(warnings.filter((message) => /63|truncat/i.test(message))).toEqual([]);
    } finally {
      console.warn = originalWarn;
      process.off('warning', onWarning);
      await own.end();
    }
  });
});
