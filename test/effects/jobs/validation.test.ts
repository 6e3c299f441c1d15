// What enqueue and the runner refuse, with the TypeErrors a caller reads: checked before any SQL
// runs, so a bad job never reaches the table (a real SQLite file underneath).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackoff, createJobRunner, RetryLaterError } from '../../../src/effects/jobs/index.js';
import { createSqliteJobQueue, type SqliteJobQueue } from '../../../src/effects/jobs/sqlite.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-jobs-validation-'));
let queue: SqliteJobQueue;

beforeAll(() => {
  queue = createSqliteJobQueue({ database: join(directory, 'jobs.db'), maxPayloadBytes: 1024 });
});

afterAll(async () => {
  await queue.unitOfWork.close();
  rmSync(directory, { recursive: true, force: true });
});

function enqueue(input: Record<string, unknown>) {
  return queue.transaction((tx) => queue.enqueue(tx, input as never));
}

describe('enqueue', () => {
  it.each([
    [{ topic: '', payload: {} }, /topic "" must be 1–200 characters/],
    [{ topic: 'x'.repeat(201), payload: {} }, /must be 1–200 characters/],
    [{ topic: 'has space', payload: {} }, /topic "has space"/],
    [{ topic: 7, payload: {} }, /topic 7/],
    [{ topic: 'email', payload: undefined }, /payload must be JSON \(got undefined/],
    [{ topic: 'email', payload: () => 1 }, /payload must be JSON/],
    [{ topic: 'email', payload: { n: 10n } }, /payload must be JSON: .*BigInt/],
    [{ topic: 'email', payload: 'x'.repeat(1100) }, /1102 bytes of JSON, more than maxPayloadBytes \(1024\)/],
    [{ topic: 'email', payload: { text: 'a\u0000b' } }, /NUL character/],
    [{ topic: 'email', payload: {}, id: '' }, /job id "" must be 1–200 printable ASCII/],
    [{ topic: 'email', payload: {}, id: 'has space' }, /job id "has space"/],
    [{ topic: 'email', payload: {}, dedupeKey: '' }, /dedupeKey must be 1–255 characters/],
    [{ topic: 'email', payload: {}, dedupeKey: 'a\nb' }, /without control characters/],
    [
      { topic: 'email', payload: {}, maxAttempts: 0 },
      /maxAttempts must be a whole number from 1 to 1000, got 0/,
    ],
    [{ topic: 'email', payload: {}, maxAttempts: 2.5 }, /maxAttempts must be a whole number/],
    [{ topic: 'email', payload: {}, runAt: new Date('nope') }, /runAt must be a valid Date/],
    [{ topic: 'email', payload: {}, runAt: -1 }, /runAt must be a valid Date or epoch milliseconds ≥ 0/],
  ])('refuses %#: %s', async (input, message) => {
    await expect(enqueue(input)).rejects.toThrow(TypeError);
    await expect(enqueue(input)).rejects.toThrow(message);
    expect((await queue.stats(Date.now())).queued).toBe(0);
  });

  it('accepts a backslash before "u0000" in a string, which is no NUL character', async () => {
    const { id } = await enqueue({ topic: 'email', payload: { text: '\\u0000' } });
    expect((await queue.get(id))?.payload).toEqual({ text: '\\u0000' });
  });
});

describe('runner options', () => {
  const handlers = { email: () => {} };
  it.each([
    [{ handlers: {} }, /at least one handler/],
    [{ handlers: { 'bad topic': () => {} } }, /handler topic "bad topic"/],
    [{ handlers: { email: 'nope' } }, /handler of topic email is not a function/],
    [{ handlers, concurrency: 0 }, /concurrency must be a whole number from 1 to 1000, got 0/],
    [{ handlers, batchSize: 1.5 }, /batchSize must be a whole number/],
    [{ handlers, leaseMs: 0 }, /leaseMs must be a finite number of milliseconds > 0/],
    [
      { handlers, leaseMs: 1000, heartbeatMs: 1000 },
      /heartbeatMs \(1000\) must be shorter than leaseMs \(1000\)/,
    ],
    [{ handlers, pollIntervalMs: Number.POSITIVE_INFINITY }, /pollIntervalMs must be a finite number/],
    [{ handlers, maxAttempts: 1001 }, /maxAttempts must be a whole number from 1 to 1000/],
    [{ handlers, backoff: { jitter: 2 } }, /backoff.jitter must be from 0 to 1/],
    [{ handlers, backoff: { scheduleMs: [] } }, /backoff.scheduleMs must list at least one delay/],
    [
      { handlers, backoff: { baseMs: 5000, maxMs: 1000 } },
      /backoff.maxMs \(1000\) must be at least backoff.baseMs \(5000\)/,
    ],
  ])('refuses %#: %s', (options, message) => {
    expect(() => createJobRunner({ queue, ...(options as object) } as never)).toThrow(message);
  });

  it('refuses a RetryLaterError without a usable delay', () => {
    expect(() => new RetryLaterError(Number.NaN)).toThrow(/finite delay/);
    expect(() => new RetryLaterError(-1)).toThrow(/finite delay/);
  });
});

describe('backoff', () => {
  it('grows by the factor up to the cap, with the jitter drawn from the top of each delay', () => {
    const delay = createBackoff({ baseMs: 100, factor: 2, maxMs: 1000, jitter: 0.5 });
    expect([1, 2, 3, 4, 5, 6].map((attempt) => delay(attempt, 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 5].map((attempt) => delay(attempt, 0.999_999))).toEqual([50, 100, 500]);
  });

  it('follows a schedule, repeating its last entry; full jitter reaches down to zero', () => {
    const schedule = createBackoff({ scheduleMs: [0, 5000, 300_000], jitter: 0 });
    expect([1, 2, 3, 4, 9].map((attempt) => schedule(attempt, 0.7))).toEqual([
      0, 5000, 300_000, 300_000, 300_000,
    ]);
    const full = createBackoff({ scheduleMs: [1000], jitter: 1 });
    expect(full(1, 0.999_999)).toBe(0);
    expect(full(1, 0)).toBe(1000);
  });
});
