// `npm run build && node bench/jobs.js`: what the job runner sustains. The same workload on each
// dialect — N no-op jobs enqueued in transactions of 500, then run by one runner with default
// options — against a fresh SQLite file and a fresh local PostgreSQL database; prints jobs/s
// for both phases and the SQLite : PostgreSQL ratio. Imports the built library from dist/.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createJobRunner } from '../dist/effects/index.js';
import { createPostgresJobQueue } from '../dist/effects/jobs/postgres.js';
import { createSqliteJobQueue } from '../dist/effects/jobs/sqlite.js';

const settings = {
  jobs: Number(process.env.BENCH_JOBS ?? 5000),
  /** Jobs enqueued per transaction, as a request (or an import) writing many at once would. */
  enqueueBatch: 500,
  concurrency: Number(process.env.BENCH_JOBS_CONCURRENCY ?? 4),
  /** The whole run is stopped after this, whatever happens. */
  deadlineMs: 55_000,
};
const postgresAdminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const deadline = setTimeout(() => {
  console.error(`bench/jobs: still running after ${settings.deadlineMs / 1000} s; stopping`);
  process.exit(1);
}, settings.deadlineMs);

/** Enqueues `settings.jobs` no-op jobs, then runs them all with one started runner. */
async function measure(queue) {
  const enqueueStart = performance.now();
  for (let first = 0; first < settings.jobs; first += settings.enqueueBatch) {
    await queue.transaction(async (tx) => {
      for (let n = first; n < Math.min(first + settings.enqueueBatch, settings.jobs); n++) {
        await queue.enqueue(tx, { topic: 'noop', payload: { n } });
      }
    });
  }
  const enqueueMs = performance.now() - enqueueStart;

  let completed = 0;
  const failures = [];
  let allDone;
  const finished = new Promise((resolve) => {
    allDone = resolve;
  });
  const runner = createJobRunner({
    queue,
    concurrency: settings.concurrency,
    handlers: { noop: () => {} },
    onEvent: (event) => {
      if (event.type === 'completed' && ++completed === settings.jobs) allDone();
      else if (event.type === 'error' || event.type === 'lease-lost' || event.type === 'retry-scheduled')
        failures.push(event);
    },
  });
  const runStart = performance.now();
  await runner.start();
  await finished;
  const runMs = performance.now() - runStart;
  await runner.stop();
  const stats = await queue.stats(Date.now());
  if (stats.done !== settings.jobs || failures.length > 0) {
    throw new Error(
      `expected ${settings.jobs} done jobs and no failures, got ${stats.done} done and ${failures.length} failures`,
    );
  }
  return {
    enqueuePerSecond: (settings.jobs / enqueueMs) * 1000,
    runPerSecond: (settings.jobs / runMs) * 1000,
  };
}

async function onSqlite() {
  const directory = mkdtempSync(join(tmpdir(), 'retrysafe-bench-jobs-'));
  const queue = createSqliteJobQueue({ database: join(directory, 'jobs.db') });
  try {
    return await measure(queue);
  } finally {
    await queue.unitOfWork.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

async function onPostgres() {
  const name = `retrysafe_bench_jobs_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: settings.concurrency + 2 });
  pool.on('error', () => {});
  try {
    const queue = createPostgresJobQueue({ database: pool });
    await queue.migrate();
    return await measure(queue);
  } finally {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((error) => {
      console.error(`bench/jobs: could not drop database ${name}: ${error.message}`);
    });
    await admin.end();
  }
}

function row(label, result) {
  return `${label.padEnd(12)}${result.enqueuePerSecond.toFixed(0).padStart(12)}${result.runPerSecond.toFixed(0).padStart(12)}`;
}

async function main() {
  console.log(
    `${settings.jobs} no-op jobs, enqueued ${settings.enqueueBatch} per transaction, run by one runner (concurrency ${settings.concurrency}, batchSize ${settings.concurrency})`,
  );
  const sqlite = await onSqlite();
  const postgres = await onPostgres();
  console.log(`${'dialect'.padEnd(12)}${'enqueue/s'.padStart(12)}${'jobs/s'.padStart(12)}`);
  console.log(row('sqlite', sqlite));
  console.log(row('postgres', postgres));
  console.log(
    `ratio sqlite:postgres  enqueue ${(sqlite.enqueuePerSecond / postgres.enqueuePerSecond).toFixed(2)}×  jobs ${(sqlite.runPerSecond / postgres.runPerSecond).toFixed(2)}×`,
  );
}

try {
  await main();
} finally {
  clearTimeout(deadline);
}
