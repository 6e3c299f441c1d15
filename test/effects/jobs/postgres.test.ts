// The job queue contract on the PostgreSQL server at 127.0.0.1:5432, in a throwaway database
// (a table per case) dropped afterwards; plus what is PostgreSQL's own: two runners on two pools
// sharing one table, and the LISTEN connection reconnecting after its backend is terminated.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobRunner } from '../../../src/effects/jobs/index.js';
import { createPostgresJobQueue, type PostgresJobQueue } from '../../../src/effects/jobs/postgres.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { describeJobQueueContract } from './contract.js';
import { EventRecorder } from './support.js';

const schema = 'jobs_test';
let database: TestDatabase;
let pool: pg.Pool;
let tables = 0;

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_jobs');
  pool = newPool();
  await pool.query(`CREATE SCHEMA ${schema}`);
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

function newPool(): pg.Pool {
  const created = new pg.Pool({ connectionString: database.url, max: 8 });
  // Teardown drops the database WITH (FORCE): a connection still closing reports it here.
  created.on('error', () => {});
  return created;
}

async function freshQueue(options: { now?: () => number; on?: pg.Pool } = {}) {
  const n = ++tables;
  const queue = createPostgresJobQueue<pg.PoolClient>({
    database: options.on ?? pool,
    tableName: `${schema}.jobs_${n}`,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  await queue.migrate();
  const rowsTable = `${schema}.rows_${n}`;
  await pool.query(`CREATE TABLE ${rowsTable} (id text PRIMARY KEY, tag text NOT NULL)`);
  return { queue, rowsTable };
}

describeJobQueueContract<pg.PoolClient>('postgres', {
  async create({ now }) {
    const { queue, rowsTable } = await freshQueue(now === undefined ? {} : { now });
    return {
      queue,
      insertRow: async (tx, id, tag) => {
        await tx.query(`INSERT INTO ${rowsTable} (id, tag) VALUES ($1, $2)`, [id, tag]);
      },
      rows: async () =>
        (await pool.query(`SELECT id, tag FROM ${rowsTable} ORDER BY id COLLATE "C"`)).rows as never,
      worker: { dialect: 'postgres', location: database.url, tableName: queue.tableName, rowsTable },
      cleanup: async () => {},
    };
  },
});

describe('postgres job queue', () => {
  it('runs each of 240 jobs exactly once with two runners on two pools', async () => {
    const second = newPool();
    const { queue, rowsTable } = await freshQueue();
    const queueOnSecond = createPostgresJobQueue<pg.PoolClient>({
      database: second,
      tableName: queue.tableName,
    });
    await pool.query(`CREATE TABLE ${rowsTable}_effects (job_id text PRIMARY KEY, runner text NOT NULL)`);
    const ids: string[] = [];
    for (let batch = 0; batch < 4; batch++) {
      await queue.transaction(async (tx) => {
        for (let n = 0; n < 60; n++)
          ids.push((await queue.enqueue(tx, { topic: 'effect', payload: { n } })).id);
      });
    }
    const invocations = new Map<string, number>();
    const events = new EventRecorder();
    const runnerOn = (on: PostgresJobQueue<pg.PoolClient>, name: string) =>
      createJobRunner({
        queue: on,
        concurrency: 4,
        batchSize: 4,
        onEvent: events.onEvent,
        handlers: {
          effect: (ctx) => {
            invocations.set(ctx.job.id, (invocations.get(ctx.job.id) ?? 0) + 1);
            return ctx.complete((tx) =>
              tx.query(`INSERT INTO ${rowsTable}_effects (job_id, runner) VALUES ($1, $2)`, [
                ctx.job.id,
                name,
              ]),
            );
          },
        },
      });
    const runners = [runnerOn(queue, 'one'), runnerOn(queueOnSecond, 'two')];
    try {
      await Promise.all(runners.map((runner) => runner.start()));
      await Promise.all(ids.map((id) => events.completed(id)));
    } finally {
      await Promise.all(runners.map((runner) => runner.stop({ graceMs: 1000 })));
      await second.end();
    }
    const effects = await pool.query(
      `SELECT count(*)::int AS rows, count(DISTINCT job_id)::int AS jobs FROM ${rowsTable}_effects`,
    );
    expect(effects.rows[0]).toEqual({ rows: 240, jobs: 240 });
    expect(invocations.size).toBe(240);
    expect([...invocations.values()].every((count) => count === 1)).toBe(true);
    expect(events.events.filter((event) => event.type === 'lease-lost' || event.type === 'error')).toEqual(
      [],
    );
    const stats = await queue.stats(Date.now());
    expect(stats).toMatchObject({ queued: 0, running: 0, done: 240, attempts: 240 });
  }, 30_000);

  it('listens again after its LISTEN backend is terminated, and is woken by the next commit', async () => {
    const { queue } = await freshQueue();
    const events = new EventRecorder();
    const runner = createJobRunner({
      queue,
      pollIntervalMs: 60_000,
      onEvent: events.onEvent,
      handlers: { ping: () => {} },
    });
    await runner.start();
    try {
      const terminated = await pool.query(
        `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
         WHERE datname = current_database() AND query = $1`,
        [`LISTEN "${queue.channel}"`],
      );
      expect(terminated.rows).toEqual([{ done: true }]);
      await events.next((event) => event.type === 'listen-lost', 'listen-lost');
      await events.next((event) => event.type === 'listen-restored', 'listen-restored');
      // The restore wakes the runner once (for what the gap missed): let it go back to sleep
      // first (a pause, not a measurement), so only the next NOTIFY can run the job below.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { id } = await queue.transaction((tx) => queue.enqueue(tx, { topic: 'ping', payload: {} }));
      await events.completed(id);
    } finally {
      await runner.stop();
    }
  }, 15_000);

  it('polls while it cannot listen, then listens on a dedicated client, which stop() ends', async () => {
    const { queue: pooled } = await freshQueue();
    const dedicated: pg.Client[] = [];
    let attempts = 0;
    const queue = createPostgresJobQueue<pg.PoolClient>({
      database: pool,
      tableName: pooled.tableName,
      listenClient: async () => {
        if (++attempts === 1) throw new Error('connection refused (first attempt)');
        const client = new pg.Client({ connectionString: database.url });
        dedicated.push(client);
        await client.connect();
        return client;
      },
    });
    const events = new EventRecorder();
    const runner = createJobRunner({
      queue,
      pollIntervalMs: 100,
      onEvent: events.onEvent,
      handlers: { ping: () => {} },
    });
    await runner.start();
    try {
      const lost = await events.next((event) => event.type === 'listen-lost', 'listen-lost');
      expect(lost).toMatchObject({
        error: expect.objectContaining({ message: 'connection refused (first attempt)' }),
      });
      await events.next((event) => event.type === 'listen-restored', 'listen-restored');
      const { id } = await queue.transaction((tx) => queue.enqueue(tx, { topic: 'ping', payload: {} }));
      await events.completed(id);
    } finally {
      await runner.stop();
    }
    expect(dedicated).toHaveLength(1);
    const listening = await pool.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1 AND state = $2',
      [`LISTEN "${queue.channel}"`, 'idle'],
    );
    expect(listening.rows[0]).toEqual({ n: 0 });
  });

  it('registers its table as a migration part and names its channel after the table', async () => {
    const { queue } = await freshQueue();
    expect(queue.channel).toBe(queue.tableName.replace('.', '_'));
    const applied = await queue.unitOfWork.applied();
    expect(applied.map((row) => `${row.part} v${row.version}`)).toContain(
      `retrysafe.jobs:${queue.tableName} v1`,
    );
    // Applying again finds nothing to do.
    expect(await queue.unitOfWork.migrate(queue.migrations)).toEqual({ applied: [] });
  });
});
