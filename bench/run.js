// `npm run bench`: what retrysafe costs. Forks each variant of POST /orders (bench/server.js) as
// its own process and drives it with autocannon from this process, on loopback, against fresh
// local databases; prints one table of req/s and p50/p99 latency with ratios and verdicts.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import { variants } from './variants.js';

const settings = {
  connections: Number(process.env.BENCH_CONNECTIONS ?? 20),
  warmupSeconds: Number(process.env.BENCH_WARMUP_S ?? 2),
  durationSeconds: Number(process.env.BENCH_DURATION_S ?? 12),
  /**
   * The measured seconds of a row are split over this many interleaved rounds. Ratios are
   * taken per round (a row against its baseline in the same round) and the median is shown,
   * so a burst of load elsewhere on the machine moves both sides of a ratio alike.
   */
  rounds: Number(process.env.BENCH_ROUNDS ?? 6),
  replayKeys: 200,
  /** The whole run is killed after this, whatever happens. */
  deadlineMs: 420_000,
};
const postgresAdminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const only = process.env.BENCH_ONLY?.split(',');

const orderBody = JSON.stringify({
  items: [
    { sku: 'book-1', quantity: 2, unitPriceCents: 1250 },
    { sku: 'pen-7', quantity: 10, unitPriceCents: 199 },
  ],
  currency: 'EUR',
  note: 'leave at the door',
});

/** Which variants run, on which paths, and against which baseline their ratio is taken. */
const plan = [
  { variant: 'a0', paths: ['plain'], baseline: undefined },
  { variant: 'a-sqlite', paths: ['plain'], baseline: 'a0' },
  { variant: 'a-postgres', paths: ['plain'], baseline: 'a0' },
  { variant: 'b', paths: ['first', 'replay'], baseline: 'a-sqlite' },
  { variant: 'c', paths: ['first', 'replay'], baseline: 'a-postgres' },
  { variant: 'd', paths: ['first', 'replay'], baseline: 'a-sqlite' },
  { variant: 'e', paths: ['first', 'replay'], baseline: 'a-sqlite' },
]
  .map((step) => ({ ...step, paths: step.paths.filter((path) => chosen(step.variant, path)) }))
  .filter((step) => step.paths.length > 0);

/** BENCH_ONLY=a0,b,d/replay runs only those variants (or variant/path rows); for profiling. */
function chosen(variant, path) {
  return only === undefined || only.includes(variant) || only.includes(`${variant}/${path}`);
}

const runTag = randomBytes(4).toString('hex');
const children = new Set();

const deadline = setTimeout(() => {
  console.error(`bench: still running after ${settings.deadlineMs / 1000} s; stopping`);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
}, settings.deadlineMs);

async function main() {
  const cpuList = cpus();
  console.log(
    `machine: ${cpuList.length} cores, ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}/${process.arch}`,
  );
  console.log(`command: npm run bench (node bench/run.js ${process.argv.slice(2).join(' ')})`.trim());
  console.log(
    `load: autocannon in the runner process, ${settings.connections} connections, ${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured per row (in ${settings.rounds} interleaved rounds); replay over ${settings.replayKeys} keys\n`,
  );

  const resources = await createResources();
  const servers = [];
  const rows = [];
  try {
    for (const step of plan) {
      const server = await startServer(step.variant, resources.env);
      servers.push(server);
      for (const path of step.paths)
        rows.push({ ...step, path, server, port: server.port, seconds: 0, requests: 0, cpuUs: 0 });
    }
    // Smoke test, seed replay keys and warm up every row first; then measure in rounds, each
    // row a slice per round, so a burst of noise on the machine spreads over all rows alike.
    for (const row of rows) {
      row.keyFor = await prepare(row);
      await cannon(row, settings.warmupSeconds);
    }
    for (let round = 0; round < settings.rounds; round++) {
      for (const row of rows) {
        const cpuBefore = await row.server.cpuUs();
        const slice = await cannon(row, settings.durationSeconds / settings.rounds);
        row.cpuUs += (await row.server.cpuUs()) - cpuBefore;
        row.seconds += slice.seconds;
        row.requests += slice.requests;
        row.roundRps = [...(row.roundRps ?? []), slice.requests / slice.seconds];
        row.non2xx = (row.non2xx ?? 0) + slice.non2xx;
        row.errors = (row.errors ?? 0) + slice.errors;
        row.latencies = [...(row.latencies ?? []), ...slice.latencies];
      }
      console.log(`  round ${round + 1}/${settings.rounds} done`);
    }
  } finally {
    for (const server of servers) await server.stop();
    await resources.cleanup();
  }
  report(rows);
}

/** A fresh temp dir for SQLite files, a fresh PostgreSQL database, a unique Redis prefix. */
async function createResources() {
  const dir = mkdtempSync(join(tmpdir(), 'retrysafe-bench-'));
  const dbName = `retrysafe_bench_${runTag}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const databaseUrl = new URL(postgresAdminUrl);
  databaseUrl.pathname = `/${dbName}`;
  const redis = new Redis(redisUrl);
  const redisPrefix = `retrysafe-bench:${runTag}:`;
  let sqliteFiles = 0;
  return {
    env: (variant) => ({
      ...process.env,
      SQLITE_PATH: join(dir, `${variant}-${++sqliteFiles}.db`),
      DATABASE_URL: databaseUrl.href,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: `${redisPrefix}${variant}:`,
    }),
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((error) => {
        console.error(`bench: could not drop database ${dbName}: ${error.message}`);
      });
      await admin.end();
      let deleted = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) deleted += await redis.unlink(...keys);
      } while (cursor !== '0');
      await redis.quit();
      console.log(
        `\ncleaned up: SQLite files in ${dir}, database ${dbName}, ${deleted} Redis keys under ${redisPrefix}`,
      );
    },
  };
}

/** Forks one server variant and waits (bounded) for it to report its port. */
function startServer(variant, env) {
  const child = fork(new URL('./server.js', import.meta.url), [variant], {
    env: env(variant),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // BENCH_PROFILE=<dir> writes a V8 CPU profile per server process, to see where time goes.
    execArgv: process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [],
  });
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  exited.then(() => children.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server ${variant} did not start within 15 s`));
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server ${variant} exited with ${code} before it was ready`));
    });
    child.once('message', ({ port }) => {
      clearTimeout(timer);
      resolve({
        port,
        /** The server's CPU time so far, in µs. */
        cpuUs() {
          return new Promise((answer) => {
            const listener = (message) => {
              if (message?.cpuUs === undefined) return;
              child.off('message', listener);
              answer(message.cpuUs);
            };
            child.on('message', listener);
            child.send('cpu');
          });
        },
        async stop() {
          child.send('stop');
          const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(killer);
        },
      });
    });
  });
}

/** Checks the row's server answers, then returns its key source: a new key each, or replayed ones. */
async function prepare(row) {
  const url = `http://127.0.0.1:${row.port}/orders`;
  await smokeTest(url, row.variant, row.path);
  let next = 0;
  if (row.path !== 'replay') return () => `${runTag}-${row.variant}-${row.path}-${next++}`;
  const keys = Array.from({ length: settings.replayKeys }, (_, i) => `${runTag}-${row.variant}-replay-${i}`);
  for (let i = 0; i < keys.length; i += settings.connections) {
    const answers = await Promise.all(keys.slice(i, i + settings.connections).map((key) => post(url, key)));
    if (answers.some((answer) => answer.status !== 201)) throw new Error(`${row.variant}: seeding failed`);
  }
  return () => keys[next++ % keys.length];
}

/** One request with a fresh key must be a 201; for idempotent variants its retry must replay. */
async function smokeTest(url, variant, path) {
  const key = `${runTag}-${variant}-${path}-smoke`;
  const first = await post(url, key);
  if (first.status !== 201) throw new Error(`${variant}: expected 201, got ${first.status}`);
  if (path === 'plain') return;
  const again = await post(url, key);
  const replayed = again.headers.get('idempotent-replayed') === 'true';
  const sameBody = (await again.text()) === (await first.text());
  if (again.status !== 201 || !replayed || !sameBody) throw new Error(`${variant}: the retry did not replay`);
}

function post(url, key) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: orderBody,
    signal: AbortSignal.timeout(5_000),
  });
}

/**
 * One autocannon run. Every request carries an Idempotency-Key (baselines ignore it), so the
 * load generator does the same work for every row. Latencies are collected at full precision
 * from the 'response' event (autocannon's own histogram rounds to whole milliseconds).
 */
async function cannon(row, seconds) {
  const latencies = [];
  const instance = autocannon({
    url: `http://127.0.0.1:${row.port}/orders`,
    method: 'POST',
    connections: settings.connections,
    duration: seconds,
    timeout: 5,
    headers: { 'content-type': 'application/json' },
    body: orderBody,
    requests: [
      {
        setupRequest(request) {
          request.headers = { ...request.headers, 'idempotency-key': row.keyFor() };
          return request;
        },
      },
    ],
  });
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  const result = await instance;
  return {
    seconds: result.duration,
    requests: result.requests.total,
    latencies,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

function report(rows) {
  const results = new Map(rows.map((row) => [`${row.variant}/${row.path}`, row]));
  for (const row of rows) {
    row.rps = row.requests / row.seconds;
    const sorted = row.latencies.sort((x, y) => x - y);
    const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
    row.p50 = at(0.5);
    row.p99 = at(0.99);
  }
  const header = ['variant', 'path', 'req/s', 'p50 ms', 'p99 ms', 'cpu µs/req', 'ratio', 'vs', 'what'];
  const lines = rows.map((row) => {
    const base = row.baseline && results.get(`${row.baseline}/plain`);
    row.ratio = base ? pairedRatio(row, base) : undefined;
    return [
      row.variant,
      row.path,
      fmt(row.rps, 0),
      fmt(row.p50, 2),
      fmt(row.p99, 2),
      fmt(row.cpuUs / row.requests, 0),
      row.ratio === undefined ? '—' : `${fmt(row.ratio, 2)}×`,
      row.baseline ?? '—',
      variants[row.variant] +
        (row.non2xx || row.errors ? `  [!] ${row.non2xx} non-2xx, ${row.errors} errors` : ''),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => String(line[i]).length)));
  const show = (cells) =>
    cells
      .map((cell, i) =>
        i >= 2 && i <= 5 ? String(cell).padStart(widths[i]) : String(cell).padEnd(widths[i]),
      )
      .join('  ')
      .trimEnd();
  console.log(
    '\nreq/s, latencies and CPU over all rounds; ratio: median of the per-round ratios to the row named in "vs".',
  );
  console.log(`\n${show(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const line of lines) console.log(show(line));

  console.log('\ntargets:');
  const verdict = (ok, text) => console.log(`  ${ok === undefined ? 'n/a ' : ok ? 'MET ' : 'MISS'}  ${text}`);
  for (const row of rows) {
    if (row.path === 'first')
      verdict(
        row.ratio && row.ratio >= 0.8,
        `${row.variant} first execution ≥ 0.8× ${row.baseline}: ${fmt(row.ratio, 2)}×`,
      );
    if (row.path === 'replay')
      verdict(
        row.ratio && row.ratio >= 1.0,
        `${row.variant} replay ≥ 1.0× ${row.baseline}: ${fmt(row.ratio, 2)}×`,
      );
  }
  for (const path of ['first', 'replay']) {
    const d = results.get(`d/${path}`);
    const e = results.get(`e/${path}`);
    const ratio = d && e ? pairedRatio(d, e) : undefined;
    verdict(
      ratio === undefined ? undefined : ratio > 1,
      `d ahead of e on ${path}: ${fmt(d?.rps, 0)} vs ${fmt(e?.rps, 0)} req/s (median of per-round ratios ${fmt(ratio, 2)}×)`,
    );
  }
  const failures = rows.filter((row) => row.non2xx || row.errors);
  if (failures.length > 0)
    console.log(
      `  [!] rows with non-2xx answers or errors: ${failures.map((r) => `${r.variant}/${r.path}`).join(', ')}`,
    );
}

/** Median over rounds of row ÷ other, each round's pair measured back to back. */
function pairedRatio(row, other) {
  const ratios = row.roundRps.map((rps, i) => rps / other.roundRps[i]).sort((x, y) => x - y);
  const mid = Math.floor(ratios.length / 2);
  return ratios.length % 2 === 1 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
}

function fmt(value, digits) {
  return value === undefined || Number.isNaN(value) ? '—' : value.toFixed(digits);
}

try {
  await main();
} catch (error) {
  console.error('bench failed:', error);
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  for (const child of children) child.kill('SIGKILL');
}
