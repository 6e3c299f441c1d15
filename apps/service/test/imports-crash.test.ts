// A bulk import whose service process is SIGKILLed mid-import, at a random batch (between two
// batches, or inside the next one's transaction): a new process on the same SQLite file or
// PostgreSQL database takes the import's job over, resumes after the last committed batch and
// finishes with each good order exactly once. The kill point is held by the job-level test
// switch RETRYSAFE_TEST_IMPORT_BATCH_PAUSE_MS (the import runs in a job, not in a request).
// Needs `npm run build` first.
import { afterAll, describe, expect, it } from 'vitest';
import {
  api,
  type Backend,
  badIndexes,
  batchCommitted,
  cleanUp,
  expectedOrderIds,
  importInput,
  listedOrderIds,
  postImport,
  startOn,
  storedOrderCount,
  untilTerminal,
} from './imports-support.js';

afterAll(cleanUp);

const pauseMs = 300;

describe.each<Backend>(['sqlite', 'postgres'])('a bulk import across a SIGKILL on %s', (backend) => {
  it('finishes in a restarted process with every good order imported exactly once', async () => {
    const first = await startOn(backend, { RETRYSAFE_TEST_IMPORT_BATCH_PAUSE_MS: String(pauseMs) });
    const accepted = await postImport(api(first.url), importInput(2000), `crash-${backend}`);
    expect(accepted.status).toBe(202);
    const id: string = accepted.json.id;
    // A random batch of the first three, then a random moment: in the pause, or in the next batch.
    const batch = Math.floor(Math.random() * 3);
    await batchCommitted(first, id, batch);
    await new Promise((resolve) => setTimeout(resolve, Math.random() * (pauseMs + 100)));
    await first.kill('SIGKILL');
    const before = await storedOrderCount(backend, first.dbPath, 'a');
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(1940);

    const second = await startOn(backend, {}, first.dbPath);
    const asA = api(second.url);
    const done = await untilTerminal(asA, id);
    expect(done.json).toMatchObject({ status: 'succeeded', processed: 2000, total: 2000 });
    const result = await asA(`/orders/imports/${id}`);
    expect(result.json).toMatchObject({ created: 1940, failed: 60 });
    expect(result.json.errors.map((error: { index: number }) => error.index)).toEqual(badIndexes(2000));
    const listed = await listedOrderIds(asA, id);
    expect([...listed].sort()).toEqual(expectedOrderIds(id, 2000));
    expect(await storedOrderCount(backend, first.dbPath, 'a')).toBe(1940);
    // The same key after the crash still answers with the same operation.
    const replay = await postImport(asA, importInput(2000), `crash-${backend}`);
    expect(replay.headers.get('operation-location')).toBe(`/operations/${id}`);
  }, 40_000);
});
