// `npm run build && node bench/imports.js`: how fast the reference service imports orders. One
// service process per dialect (a fresh SQLite file, a fresh local PostgreSQL database), a
// 10,000-order `POST /orders/imports` timed from the POST to the operation's end (long-polled
// with `Prefer: wait`), twice each; prints orders/s and the SQLite : PostgreSQL ratio.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { spawnService } from '../apps/service/dist/spawn.js';

const settings = {
  orders: Number(process.env.BENCH_IMPORT_ORDERS ?? 10_000),
  runs: Number(process.env.BENCH_IMPORT_RUNS ?? 2),
  /** The whole run is stopped after this, whatever happens. */
  deadlineMs: 240_000,
};
const postgresAdminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const headers = { authorization: 'Bearer demo-writer-a', 'content-type': 'application/json' };
const terminal = new Set(['succeeded', 'failed', 'canceled']);

const deadline = setTimeout(() => {
  console.error(`bench/imports: still running after ${settings.deadlineMs / 1000} s; stopping`);
  process.exit(1);
}, settings.deadlineMs);

function ordersBody() {
  const orders = Array.from({ length: settings.orders }, (_, i) => ({
    items: [
      { sku: `sku-${i % 500}`, quantity: 1 + (i % 3), unitPriceCents: 100 + (i % 900) },
      { sku: 'gift-wrap', quantity: 1, unitPriceCents: 250 },
    ],
    currency: 'EUR',
    note: `bench order ${i}`,
  }));
  return JSON.stringify(orders);
}

/** One import, from the POST to the operation's terminal state: orders per second. */
async function timeImport(url, body) {
  const started = performance.now();
  const accepted = await fetch(`${url}/orders/imports`, {
    method: 'POST',
    headers: { ...headers, 'idempotency-key': `bench-${randomBytes(6).toString('hex')}` },
    body,
  });
  if (accepted.status !== 202)
    throw new Error(`import answered ${accepted.status}: ${await accepted.text()}`);
  const operation = await accepted.json();
  let state;
  do {
    const answer = await fetch(`${url}/operations/${operation.id}`, {
      headers: { ...headers, prefer: 'wait=30' },
    });
    state = await answer.json();
  } while (!terminal.has(state.status));
  const seconds = (performance.now() - started) / 1000;
  if (state.status !== 'succeeded') throw new Error(`the import ended ${state.status}`);
  const result = await (await fetch(`${url}${state.resourceLocation}`, { headers })).json();
  if (result.created !== settings.orders) throw new Error(`imported ${result.created} of ${settings.orders}`);
  return settings.orders / seconds;
}

async function measure(db) {
  const service = await spawnService({ db, env: { LOG_LEVEL: 'warn', JOBS_POLL_INTERVAL_MS: '50' } });
  try {
    const body = ordersBody();
    const rates = [];
    for (let run = 0; run < settings.runs; run++) rates.push(await timeImport(service.url, body));
    return Math.max(...rates);
  } finally {
    service.child.kill('SIGTERM');
    await service.exited;
  }
}

async function withPostgresDatabase(use) {
  const name = `retrysafe_bench_imports_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  try {
    const url = new URL(postgresAdminUrl);
    url.pathname = `/${name}`;
    return await use(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-bench-imports-'));
try {
  const sqlite = await measure(join(directory, 'service.db'));
  const postgres = await withPostgresDatabase((url) => measure(url));
  console.log(`${settings.orders}-order import, best of ${settings.runs}, from POST to the operation's end`);
  console.log(`dialect       orders/s`);
  console.log(`sqlite     ${String(Math.round(sqlite)).padStart(11)}`);
  console.log(`postgres   ${String(Math.round(postgres)).padStart(11)}`);
  console.log(`ratio sqlite:postgres  ${(sqlite / postgres).toFixed(2)}×`);
} finally {
  rmSync(directory, { recursive: true, force: true });
  clearTimeout(deadline);
}
