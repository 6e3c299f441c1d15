// The /operations resources of the reference service on a real process: the monitor's strong
// ETag and Retry-After while an import runs, newest-first pages with cursors and Link, 404 for
// what does not exist, the OpenAPI entries; and the retention: OPERATIONS_RETENTION_MS under
// 24 h is refused at start, and the reaper deletes only operations past it (real SQLite file).
// Needs `npm run build` first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { createSqliteJobQueue } from 'retrysafe/jobs/sqlite';
import { createSqliteOperations } from 'retrysafe/operations/sqlite';
import { createSqliteUnitOfWork } from 'retrysafe/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOperationsReaper } from '../src/imports/reaper.js';
import { operationsRetentionFromEnv } from '../src/imports/settings.js';
import { spawnService } from '../src/spawn.js';
import {
  type Api,
  api,
  batchCommitted,
  cleanUp,
  goodOrder,
  postImport,
  startOn,
  untilTerminal,
} from './imports-support.js';

afterAll(cleanUp);

const orders = (count: number) => Array.from({ length: count }, (_, index) => goodOrder(index));

describe('the operation resources of the service', () => {
  let service: Awaited<ReturnType<typeof startOn>>;
  let asA: Api;
  let asB: Api;
  beforeAll(async () => {
    service = await startOn('sqlite', { RETRYSAFE_TEST_IMPORT_BATCH_PAUSE_MS: '400' });
    asA = api(service.url);
    asB = api(service.url, 'demo-writer-b');
  });

  it('monitors a running import with a strong ETag that changes with it, and Retry-After until it ends', async () => {
    const accepted = await postImport(asA, orders(1000), 'monitor');
    const id: string = accepted.json.id;
    await batchCommitted(service, id, 0);
    const running = await asA(`/operations/${id}`);
    expect(running.json).toMatchObject({
      status: 'running',
      processed: 500,
      total: 1000,
      percentComplete: 50,
    });
    expect(running.headers.get('retry-after')).toBe('1');
    const etag = running.headers.get('etag');
    expect(etag).toMatch(/^"[^"]+"$/);
    // Unchanged state, same bytes, same ETag.
    expect((await asA(`/operations/${id}`)).headers.get('etag')).toBe(etag);
    const done = await untilTerminal(asA, id);
    expect(done.json.status).toBe('succeeded');
    expect(done.headers.get('etag')).not.toBe(etag);
    expect(done.headers.get('retry-after')).toBeNull();
  });

  it("lists a tenant's operations newest first in pages, with nextCursor and Link", async () => {
    const ids: string[] = [];
    for (const key of ['list-1', 'list-2', 'list-3']) {
      const accepted = await postImport(asB, orders(1), key);
      ids.push(accepted.json.id);
      await untilTerminal(asB, accepted.json.id);
    }
    const first = await asB('/operations?limit=2');
    expect(first.status).toBe(200);
    expect(first.json.data.map((operation: { id: string }) => operation.id)).toEqual([ids[2], ids[1]]);
    expect(first.json.data[0]).toMatchObject({ kind: 'orders.import', status: 'succeeded' });
    expect(first.json.nextCursor).toEqual(expect.any(String));
    const next = /<([^>]+)>; rel="next"/.exec(first.headers.get('link') ?? '')?.[1];
    expect(next).toBe(`/operations?limit=2&cursor=${encodeURIComponent(first.json.nextCursor)}`);
    const second = await asB(next!);
    expect(second.json.data.map((operation: { id: string }) => operation.id)).toEqual([ids[0]]);
    expect(second.json.nextCursor).toBeNull();
    expect(second.headers.get('link')).toBeNull();
    expect((await asB('/operations?cursor=not-a-cursor')).status).toBe(400);
  });

  it('answers 404 problem+json for an operation or import that does not exist', async () => {
    for (const answer of [
      await asA('/operations/no-such-operation'),
      await asA('/operations/no-such-operation', { headers: { prefer: 'wait=2' } }),
      await asA('/operations/no-such-operation/cancel', { method: 'POST' }),
      await asA('/orders/imports/no-such-import'),
    ]) {
      expect(answer.status).toBe(404);
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
    }
  });

  it('documents the 202, the operation resource and its headers in OpenAPI', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the document is walked by path and every value read is asserted on.
    const doc = (await fetch(`${service.url}/openapi.json`).then((r) => r.json())) as any;
    const accepted = doc.paths['/orders/imports'].post.responses['202'];
    expect(Object.keys(accepted.headers)).toEqual(['location', 'operation-location', 'retry-after']);
    expect(doc.paths['/operations/{id}'].get.responses['200'].headers['retry-after']).toBeDefined();
    expect(doc.paths['/operations/{id}/cancel'].post.responses).toHaveProperty('409');
    expect(doc.paths['/operations'].get).toBeDefined();
    expect(doc.paths['/orders/imports/{id}'].get).toBeDefined();
  });
});

describe('a long-poll during shutdown', () => {
  it('answers at once with the state as it is when the process is told to stop (SIGTERM)', async () => {
    const service = await startOn('sqlite', { RETRYSAFE_TEST_IMPORT_BATCH_PAUSE_MS: '30000' });
    const asA = api(service.url);
    const accepted = await postImport(asA, orders(1000), 'shutdown');
    await batchCommitted(service, accepted.json.id, 0);
    const polling = asA(`/operations/${accepted.json.id}`, { headers: { prefer: 'wait=60' } });
    // Let the poll reach its wait before the signal.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopped = service.stop();
    const answer = await polling;
    // Well before its 60 s (the test's 20 s timeout would fail it): running, with Retry-After.
    expect(answer.status).toBe(200);
    expect(answer.json.status).toBe('running');
    expect(answer.headers.get('retry-after')).toBe('1');
    await stopped;
  }, 20_000);
});

describe('operation retention', () => {
  it('refuses OPERATIONS_RETENTION_MS under 24 h, at start', async () => {
    expect(operationsRetentionFromEnv({})).toBe(24 * 60 * 60_000);
    expect(operationsRetentionFromEnv({ OPERATIONS_RETENTION_MS: String(48 * 60 * 60_000) })).toBe(
      48 * 60 * 60_000,
    );
    expect(() => operationsRetentionFromEnv({ OPERATIONS_RETENTION_MS: '60000' })).toThrow(/≥ 86400000/);
    const dir = mkdtempSync(join(tmpdir(), 'retrysafe-retention-'));
    try {
      await expect(
        spawnService({
          db: join(dir, 'service.db'),
          // A failed start-up lingers until its deadline (server.ts keeps that timer): keep it short.
          env: { OPERATIONS_RETENTION_MS: '60000', STARTUP_TIMEOUT_MS: '1000' },
        }),
      ).rejects.toThrow(/OPERATIONS_RETENTION_MS=60000/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reaps only operations that ended more than the retention ago, on the reaper interval', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retrysafe-reaper-'));
    const unitOfWork = createSqliteUnitOfWork(join(dir, 'reaper.db'));
    const jobs = createSqliteJobQueue({ database: unitOfWork });
    let clock = Date.UTC(2026, 0, 1);
    const operations = createSqliteOperations({ database: unitOfWork, jobs, now: () => clock });
    const app = Fastify();
    try {
      const create = (id: string) =>
        unitOfWork.transaction((tx) =>
          operations.create(tx, {
            id,
            scope: 't',
            kind: 'orders.import',
            jobTopic: 'orders.import',
            jobPayload: {},
          }),
        );
      await create('old');
      await operations.succeed('old', '/orders/imports/old');
      clock += 60 * 60_000;
      await create('recent');
      await operations.succeed('recent', '/orders/imports/recent');
      await create('open');
      // The first one ended 24 h and a minute ago; the second 23 h ago; the third never ended.
      clock += 23 * 60 * 60_000 + 60_000;
      startOperationsReaper(app, operations, 20);
      for (let poll = 0; poll < 100 && (await operations.get('t', 'old')) !== undefined; poll++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await operations.get('t', 'old')).toBeUndefined();
      expect(await operations.get('t', 'recent')).toMatchObject({ status: 'succeeded' });
      expect(await operations.get('t', 'open')).toMatchObject({ status: 'notStarted' });
    } finally {
      await app.close();
      await unitOfWork.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
