// The job queue contract: one set of cases the outbox and the runner must pass on every SQL
// dialect, against real databases. Each case gets a fresh jobs table and business table.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createJobRunner,
  type JobContext,
  JobLeaseLostError,
  type JobQueue,
  type JobRunner,
  type JobRunnerOptions,
  JobRunnerStoppedError,
  leaseLapsedOnLastAttempt,
  RetryLaterError,
} from '../../../src/effects/jobs/index.js';
import { runFixtureUntilThenKill } from '../../helpers/kill-fixture.js';
import { EventRecorder, gate, ManualClock } from './support.js';

/** What the crash fixture needs to open the same queue and business table in another process. */
export interface WorkerTarget {
  dialect: 'sqlite' | 'postgres';
  /** A file path (SQLite) or a connection URL (PostgreSQL). */
  location: string;
  tableName: string;
  rowsTable: string;
}

export interface JobsHarness<Tx> {
  queue: JobQueue<Tx>;
  /** Writes a business row inside a job's (or the test's) transaction. */
  insertRow(tx: Tx, id: string, tag: string): Promise<void>;
  /** The business rows, ordered by id. */
  rows(): Promise<{ id: string; tag: string }[]>;
  worker: WorkerTarget;
  cleanup(): Promise<void>;
}

export interface JobsFactory<Tx> {
  /** A fresh queue (its own jobs table) and business table, on the given clock. */
  create(options: { now?: () => number }): Promise<JobsHarness<Tx>>;
}

const crashWorker = fileURLToPath(new URL('../fixtures/jobs-crash-worker.ts', import.meta.url));

export function describeJobQueueContract<Tx>(name: string, factory: JobsFactory<Tx>) {
  describe(`${name} job queue contract`, () => {
    const cleanups: (() => Promise<void>)[] = [];

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    async function setUp(clock?: ManualClock): Promise<JobsHarness<Tx>> {
      const harness = await factory.create(clock === undefined ? {} : { now: clock.now });
      cleanups.push(() => harness.cleanup());
      return harness;
    }

    function runner(harness: JobsHarness<Tx>, options: Omit<JobRunnerOptions<Tx>, 'queue'>): JobRunner<Tx> {
      const created = createJobRunner({ queue: harness.queue, ...options });
      cleanups.push(() => created.stop({ graceMs: 0 }));
      return created;
    }

    function enqueue(harness: JobsHarness<Tx>, input: Parameters<JobQueue<Tx>['enqueue']>[1]) {
      return harness.queue.transaction((tx) => harness.queue.enqueue(tx, input));
    }

    it('never runs a job whose enqueueing transaction rolled back', async () => {
      const harness = await setUp();
      const ran: string[] = [];
      await expect(
        harness.queue.transaction(async (tx) => {
          await harness.insertRow(tx, 'order-1', 'request');
          await harness.queue.enqueue(tx, { topic: 'email', payload: { order: 1 } });
          throw new Error('the request failed after enqueueing');
        }),
      ).rejects.toThrow('the request failed');
      const jobs = runner(harness, { handlers: { email: (ctx) => void ran.push(ctx.job.id) } });
      expect(await jobs.drain()).toBe(0);
      expect(ran).toEqual([]);
      expect(await harness.rows()).toEqual([]);
      expect((await jobs.stats()).queued).toBe(0);
    });

    it('runs a committed job once, with its payload, attempt and derived key', async () => {
      const harness = await setUp();
      const { id } = await harness.queue.transaction(async (tx) => {
        await harness.insertRow(tx, 'order-1', 'request');
        return harness.queue.enqueue(tx, { topic: 'email', payload: { order: 1, to: 'a@example.com' } });
      });
      const seen: Pick<JobContext<Tx>, 'job' | 'key'>[] = [];
      const jobs = runner(harness, {
        handlers: { email: (ctx) => void seen.push({ job: ctx.job, key: ctx.key }) },
      });
      expect(await jobs.drain()).toBe(1);
      expect(await jobs.drain()).toBe(0);
      expect(seen).toEqual([
        {
          job: expect.objectContaining({
            id,
            topic: 'email',
            payload: { order: 1, to: 'a@example.com' },
            attempt: 1,
          }),
          key: `job:${id}`,
        },
      ]);
      const job = await harness.queue.get(id);
      expect(job).toMatchObject({ state: 'done', attempts: 1, leaseToken: null });
      expect(job?.finishedAtMs).toEqual(expect.any(Number));
    });

    it('treats an existing id or (topic, dedupeKey) as a no-op answering the existing id', async () => {
      const harness = await setUp();
      const first = await enqueue(harness, { topic: 'email', payload: { n: 1 }, id: 'order-1:email' });
      const again = await enqueue(harness, { topic: 'email', payload: { n: 2 }, id: 'order-1:email' });
      expect(first).toEqual({ id: 'order-1:email', created: true });
      expect(again).toEqual({ id: 'order-1:email', created: false });

      const keyed = await enqueue(harness, { topic: 'email', payload: { n: 3 }, dedupeKey: 'welcome:7' });
      const keyedAgain = await enqueue(harness, {
        topic: 'email',
        payload: { n: 4 },
        dedupeKey: 'welcome:7',
      });
      const otherTopic = await enqueue(harness, { topic: 'sms', payload: { n: 5 }, dedupeKey: 'welcome:7' });
      expect(keyed.created).toBe(true);
      expect(keyedAgain).toEqual({ id: keyed.id, created: false });
      expect(otherTopic.created).toBe(true);
      expect(otherTopic.id).not.toBe(keyed.id);

      // Twice in one transaction (a handler retried inside itself) is still one job.
      const twice = await harness.queue.transaction(async (tx) => [
        await harness.queue.enqueue(tx, { topic: 'email', payload: {}, id: 'order-2:email' }),
        await harness.queue.enqueue(tx, { topic: 'email', payload: {}, id: 'order-2:email' }),
      ]);
      expect(twice.map((result) => result.created)).toEqual([true, false]);

      const payloads: unknown[] = [];
      const jobs = runner(harness, {
        handlers: { email: (ctx) => void payloads.push(ctx.job.payload), sms: () => {} },
      });
      expect(await jobs.drain()).toBe(4);
      expect(payloads).toHaveLength(3);
      expect(payloads).toEqual(expect.arrayContaining([{ n: 1 }, { n: 3 }, {}]));
      // Still a no-op once the job is done, for as long as its row is kept.
      expect(await enqueue(harness, { topic: 'email', payload: {}, id: 'order-1:email' })).toEqual({
        id: 'order-1:email',
        created: false,
      });
      expect(await jobs.drain()).toBe(0);
    });

    it('claims only the topics it has handlers for', async () => {
      const harness = await setUp();
      const { id } = await enqueue(harness, { topic: 'other', payload: {} });
      await enqueue(harness, { topic: 'mine', payload: {} });
      const jobs = runner(harness, { handlers: { mine: () => {} } });
      expect(await jobs.drain()).toBe(1);
      expect(await harness.queue.get(id)).toMatchObject({ state: 'queued', attempts: 0 });
    });

    it('fences a run whose lease lapsed: its completion and step roll back, the takeover finishes the job', async () => {
      const t0 = 1_700_000_000_000;
      const harness = await setUp(new ManualClock(t0));
      const { id } = await enqueue(harness, { topic: 'ship', payload: {} });
      const aClaimed = gate<JobContext<Tx>>();
      const aMayGoOn = gate();
      const bLabelled = gate();
      const bMayFinish = gate();
      const outcomes: unknown[] = [];
      const eventsA = new EventRecorder();
      // A's clock stands still (its heartbeat, every 20 s, never fires here); B's is past A's lease.
      const a = runner(harness, {
        leaseMs: 60_000,
        now: () => t0,
        onEvent: eventsA.onEvent,
        handlers: {
          ship: async (ctx) => {
            aClaimed.open(ctx);
            await aMayGoOn.promise;
            // Both reach the database while B holds the job: each fenced write finds B's token.
            for (const write of [
              () => ctx.complete((tx) => harness.insertRow(tx, 'shipped-by-a', 'A')),
              () => ctx.step('label', (tx) => harness.insertRow(tx, 'label-by-a', 'A')),
            ]) {
              outcomes.push(await write().catch((error: unknown) => error));
            }
          },
        },
      });
      const b = runner(harness, {
        leaseMs: 60_000,
        now: () => t0 + 61_000,
        handlers: {
          ship: async (ctx) => {
            await ctx.step('label', (tx) => harness.insertRow(tx, 'label-by-b', 'B'));
            bLabelled.open();
            await bMayFinish.promise;
            await ctx.complete((tx) => harness.insertRow(tx, 'shipped-by-b', 'B'));
          },
        },
      });
      const aRun = a.runOnce();
      const ctxA = await aClaimed.promise;
      const bRun = b.runOnce();
      await bLabelled.promise;
      aMayGoOn.open();
      expect(await aRun).toBe(1);
      bMayFinish.open();
      expect(await bRun).toBe(1);

      expect(outcomes).toHaveLength(2);
      for (const outcome of outcomes) {
        expect(outcome).toBeInstanceOf(JobLeaseLostError);
        expect(outcome).toMatchObject({ jobId: id, writes: 'rolled-back' });
      }
      expect(ctxA.signal.aborted).toBe(true);
      expect(ctxA.signal.reason).toBeInstanceOf(JobLeaseLostError);
      expect(await harness.rows()).toEqual([
        { id: 'label-by-b', tag: 'B' },
        { id: 'shipped-by-b', tag: 'B' },
      ]);
      expect(await harness.queue.get(id)).toMatchObject({ state: 'done', attempts: 2 });
      expect(eventsA.about(id, 'lease-lost')).toHaveLength(1);
      expect(eventsA.about(id, 'completed')).toHaveLength(0);
    });

    it('renews a long job’s lease by heartbeat, and aborts its signal once a renewal is refused', async () => {
      const t0 = 1_700_000_000_000;
      const clockA = new ManualClock(t0);
      const harness = await setUp(clockA);
      const { id } = await enqueue(harness, { topic: 'report', payload: {} });
      const aClaimed = gate<JobContext<Tx>>();
      const aMayFinish = gate();
      const eventsA = new EventRecorder();
      const a = runner(harness, {
        leaseMs: 60_000,
        heartbeatMs: 20,
        now: clockA.now,
        onEvent: eventsA.onEvent,
        handlers: {
          report: async (ctx) => {
            aClaimed.open(ctx);
            await aMayFinish.promise;
          },
        },
      });
      const aAborted = gate();
      const bClock = new ManualClock(t0 + 80_000);
      // B holds the job (running) until A has heard it lost it: only A's fenced renewal can tell A.
      const b = runner(harness, {
        leaseMs: 60_000,
        now: bClock.now,
        handlers: { report: () => aAborted.promise },
      });
      const aRun = a.runOnce();
      const ctxA = await aClaimed.promise;
      clockA.advance(40_000);
      await eventsA.next(
        (event) => event.type === 'lease-renewed' && event.leaseExpiresAtMs === t0 + 100_000,
        'lease-renewed to t0 + 100 s',
      );
      // Past the first lease (t0 + 60 s), inside the renewed one: nobody takes the job over.
      expect(await b.runOnce()).toBe(0);
      bClock.ms = t0 + 100_001;
      const bRun = b.runOnce();
      await new Promise((resolve) => ctxA.signal.addEventListener('abort', resolve, { once: true }));
      expect(ctxA.signal.reason).toBeInstanceOf(JobLeaseLostError);
      aAborted.open();
      expect(await bRun).toBe(1);
      aMayFinish.open();
      await aRun;
      expect(eventsA.about(id, 'lease-lost')).toHaveLength(1);
      expect(await harness.queue.get(id)).toMatchObject({ state: 'done', attempts: 2 });
    });

    it('retries a failing job on the backoff and marks it dead after its last attempt', async () => {
      const harness = await setUp();
      const events = new EventRecorder();
      const { id } = await enqueue(harness, { topic: 'flaky', payload: {}, maxAttempts: 3 });
      const { id: byDefault } = await enqueue(harness, { topic: 'flaky', payload: {} });
      let calls = 0;
      const jobs = runner(harness, {
        maxAttempts: 2,
        backoff: { scheduleMs: [0], jitter: 0 },
        onEvent: events.onEvent,
        handlers: {
          flaky: (ctx) => {
            calls++;
            throw new Error(`downstream refused attempt ${ctx.job.attempt}`);
          },
        },
      });
      expect(await jobs.drain()).toBe(5);
      expect(calls).toBe(5);
      expect(await harness.queue.get(id)).toMatchObject({
        state: 'dead',
        attempts: 3,
        lastError: 'Error: downstream refused attempt 3',
        leaseToken: null,
      });
      expect((await harness.queue.get(id))?.finishedAtMs).toEqual(expect.any(Number));
      expect(await harness.queue.get(byDefault)).toMatchObject({ state: 'dead', attempts: 2 });
      expect(events.about(id).map((event) => event.type)).toEqual([
        'claimed',
        'retry-scheduled',
        'claimed',
        'retry-scheduled',
        'claimed',
        'dead',
      ]);
      const stats = await jobs.stats();
      expect(stats).toMatchObject({ dead: 2, attempts: 5 });
      expect(stats.runner).toMatchObject({ claimed: 5, retried: 3, dead: 2, completed: 0 });
    });

    it('waits the backoff before a retry, and exactly the delay a RetryLaterError asks for', async () => {
      const clock = new ManualClock();
      const t0 = clock.ms;
      const harness = await setUp(clock);
      const { id: backedOff } = await enqueue(harness, { topic: 'backoff', payload: {} });
      const { id: later } = await enqueue(harness, { topic: 'later', payload: {} });
      const jobs = runner(harness, {
        backoff: { baseMs: 1000, factor: 3, maxMs: 5000, jitter: 0.5 },
        random: () => 0.5,
        handlers: {
          backoff: (ctx) => {
            if (ctx.job.attempt < 4) throw new Error('not yet');
          },
          later: (ctx) => {
            if (ctx.job.attempt === 1) throw new RetryLaterError(12_345, 'the provider said wait');
          },
        },
      });
      expect(await jobs.runOnce()).toBe(2);
      // 1000 ms with half of half of it drawn away (jitter 0.5, random 0.5).
      expect(await harness.queue.get(backedOff)).toMatchObject({
        state: 'queued',
        runAtMs: t0 + 750,
        attempts: 1,
      });
      expect(await harness.queue.get(later)).toMatchObject({
        state: 'queued',
        runAtMs: t0 + 12_345,
        attempts: 1,
        lastError: 'RetryLaterError: the provider said wait',
      });
      clock.advance(749);
      expect(await jobs.drain()).toBe(0);
      clock.advance(1);
      expect(await jobs.drain()).toBe(1);
      // The second retry waits 3000 × 0.75, the third is capped at 5000 × 0.75.
      expect(await harness.queue.get(backedOff)).toMatchObject({ runAtMs: t0 + 750 + 2250, attempts: 2 });
      clock.advance(2250);
      expect(await jobs.drain()).toBe(1);
      expect(await harness.queue.get(backedOff)).toMatchObject({ runAtMs: t0 + 3000 + 3750, attempts: 3 });
      clock.ms = t0 + 12_344;
      expect(await jobs.drain()).toBe(1);
      expect(await harness.queue.get(later)).toMatchObject({ state: 'queued' });
      clock.ms = t0 + 12_345;
      expect(await jobs.drain()).toBe(1);
      expect(await harness.queue.get(later)).toMatchObject({ state: 'done', attempts: 2 });
      expect(await harness.queue.get(backedOff)).toMatchObject({ state: 'done', attempts: 4 });
    });

    it('hands a call its derived key and does not call again on a later attempt', async () => {
      const harness = await setUp();
      const { id } = await enqueue(harness, { topic: 'charge', payload: { cents: 1250 } });
      const keys: string[] = [];
      const results: unknown[] = [];
      const jobs = runner(harness, {
        backoff: { scheduleMs: [0] },
        handlers: {
          charge: async (ctx) => {
            const charge = await ctx.call('provider', ({ key }) => {
              keys.push(key);
              return { chargeId: `ch_${keys.length}` };
            });
            results.push(charge);
            if (ctx.job.attempt === 1) throw new Error('crashed after the charge');
            await ctx.complete((tx) => harness.insertRow(tx, charge.chargeId, 'charged'));
          },
        },
      });
      expect(await jobs.drain()).toBe(2);
      expect(keys).toEqual([`job:${id}:provider`]);
      expect(results).toEqual([{ chargeId: 'ch_1' }, { chargeId: 'ch_1' }]);
      expect(await harness.rows()).toEqual([{ id: 'ch_1', tag: 'charged' }]);
    });

    it('marks a job dead when its lease lapsed on the last attempt, instead of running it again', async () => {
      const t0 = 1_700_000_000_000;
      const harness = await setUp(new ManualClock(t0));
      const { id } = await enqueue(harness, { topic: 'once', payload: {}, maxAttempts: 1 });
      const claimed = gate();
      const mayFinish = gate();
      const a = runner(harness, {
        leaseMs: 60_000,
        now: () => t0,
        handlers: {
          once: async () => {
            claimed.open();
            await mayFinish.promise;
          },
        },
      });
      const eventsB = new EventRecorder();
      let bRan = 0;
      const b = runner(harness, {
        now: () => t0 + 61_000,
        onEvent: eventsB.onEvent,
        handlers: { once: () => void bRan++ },
      });
      const aRun = a.runOnce();
      await claimed.promise;
      expect(await b.runOnce()).toBe(0);
      expect(bRan).toBe(0);
      expect(eventsB.about(id, 'dead')).toEqual([
        expect.objectContaining({
          error: leaseLapsedOnLastAttempt,
          job: expect.objectContaining({ attempt: 1 }),
        }),
      ]);
      mayFinish.open();
      await aRun;
      expect(await harness.queue.get(id)).toMatchObject({
        state: 'dead',
        attempts: 1,
        lastError: leaseLapsedOnLastAttempt,
      });
    });

    it('reaps done and dead jobs after retention, in bounded batches, and never a queued one', async () => {
      const clock = new ManualClock();
      const t0 = clock.ms;
      const harness = await setUp(clock);
      for (let n = 0; n < 5; n++) await enqueue(harness, { topic: 'ok', payload: { n } });
      const { id: dead } = await enqueue(harness, { topic: 'fails', payload: {}, maxAttempts: 1 });
      const { id: delayed } = await enqueue(harness, {
        topic: 'ok',
        payload: {},
        runAt: t0 + 365 * 86_400_000,
      });
      const events = new EventRecorder();
      const retentionMs = 3_600_000;
      const jobs = runner(harness, {
        retentionMs,
        reapBatchSize: 2,
        maxReapBatches: 2,
        onEvent: events.onEvent,
        handlers: {
          ok: () => {},
          fails: () => {
            throw new Error('no');
          },
        },
      });
      expect(await jobs.drain()).toBe(6);
      expect(await harness.queue.get(dead)).toMatchObject({ state: 'dead' });
      clock.ms = t0 + retentionMs - 1;
      expect(await jobs.reap()).toBe(0);
      clock.ms = t0 + retentionMs;
      // Two batches of two per pass; the rest waits for the next pass.
      expect(await jobs.reap()).toBe(4);
      expect(await jobs.reap()).toBe(2);
      expect(await jobs.reap()).toBe(0);
      const stats = await jobs.stats();
      expect(stats).toMatchObject({ queued: 1, done: 0, dead: 0 });
      expect(await harness.queue.get(dead)).toBeUndefined();
      expect(await harness.queue.get(delayed)).toMatchObject({ state: 'queued' });
      expect(events.events.filter((event) => event.type === 'reaped')).toEqual([
        { type: 'reaped', count: 4 },
        { type: 'reaped', count: 2 },
      ]);
      expect(stats.runner.reaped).toBe(6);
    });

    it('counts jobs per topic and the age of the oldest due one', async () => {
      const clock = new ManualClock();
      const t0 = clock.ms;
      const harness = await setUp(clock);
      await enqueue(harness, { topic: 'a', payload: {} });
      clock.advance(1000);
      await enqueue(harness, { topic: 'a', payload: {} });
      await enqueue(harness, { topic: 'a', payload: {}, runAt: new Date(t0 + 1_000_000) });
      clock.advance(1000);
      await enqueue(harness, { topic: 'b', payload: {} });
      clock.ms = t0 + 5000;
      const jobs = runner(harness, { handlers: { a: () => {} } });
      expect(await jobs.stats()).toMatchObject({
        queued: 4,
        due: 3,
        oldestDueAgeMs: 5000,
        topics: {
          a: { queued: 3, due: 2, oldestDueAgeMs: 5000, running: 0, done: 0, attempts: 0 },
          b: { queued: 1, due: 1, oldestDueAgeMs: 3000 },
        },
      });
      expect(await jobs.drain()).toBe(2);
      const after = await jobs.stats();
      expect(after.topics.a).toMatchObject({ queued: 1, due: 0, oldestDueAgeMs: 0, done: 2, attempts: 2 });
      expect(after.runner).toMatchObject({ claimed: 2, completed: 2, running: 0 });
    });

    it('runs at most `concurrency` jobs at once', async () => {
      const harness = await setUp();
      const events = new EventRecorder();
      const ids: string[] = [];
      for (let n = 0; n < 6; n++) ids.push((await enqueue(harness, { topic: 'work', payload: { n } })).id);
      let running = 0;
      let most = 0;
      const jobs = runner(harness, {
        concurrency: 2,
        onEvent: events.onEvent,
        handlers: {
          work: async () => {
            running++;
            most = Math.max(most, running);
            await new Promise((resolve) => setTimeout(resolve, 20));
            running--;
          },
        },
      });
      await jobs.start();
      await Promise.all(ids.map((id) => events.completed(id)));
      expect(most).toBe(2);
    });

    it('wakes at the commit of an enqueue, not by polling, and sleeps only until a delayed job is due', async () => {
      const harness = await setUp();
      const events = new EventRecorder();
      const jobs = runner(harness, {
        // Nothing would be found by polling within the test's timeout: only a wake-up can run these.
        pollIntervalMs: 60_000,
        onEvent: events.onEvent,
        handlers: { ping: (ctx) => ctx.complete((tx) => harness.insertRow(tx, ctx.job.id, 'ran')) },
      });
      await jobs.start();
      // Let the runner find nothing and go to sleep first (a pause, not a measurement).
      await new Promise((resolve) => setTimeout(resolve, 200));
      const { id } = await enqueue(harness, { topic: 'ping', payload: {} });
      await events.completed(id);
      const { id: delayed } = await enqueue(harness, { topic: 'ping', payload: {}, runAt: Date.now() + 300 });
      await events.completed(delayed);
      expect(await harness.rows()).toEqual(
        [
          { id, tag: 'ran' },
          { id: delayed, tag: 'ran' },
        ].sort((x, y) => (x.id < y.id ? -1 : 1)),
      );
    }, 15_000);

    it('stops gracefully: a job that finishes within the grace completes, the rest is released and runs later exactly once', async () => {
      const harness = await setUp();
      const events = new EventRecorder();
      const { id: quick } = await enqueue(harness, { topic: 'quick', payload: {} });
      const { id: slow } = await enqueue(harness, { topic: 'slow', payload: {} });
      const quickMayFinish = gate();
      let slowSignal: AbortSignal | undefined;
      const first = runner(harness, {
        onEvent: events.onEvent,
        handlers: {
          quick: async (ctx) => {
            await quickMayFinish.promise;
            await ctx.complete((tx) => harness.insertRow(tx, 'quick', 'first'));
          },
          slow: async (ctx) => {
            slowSignal = ctx.signal;
            // Works until told to stop, then gives up without completing.
            await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
          },
        },
      });
      await first.start();
      await events.next((event) => event.type === 'claimed' && event.job.id === quick, 'claimed(quick)');
      await events.next((event) => event.type === 'claimed' && event.job.id === slow, 'claimed(slow)');
      const stopped = first.stop({ graceMs: 300 });
      quickMayFinish.open();
      await stopped;
      expect(await harness.queue.get(quick)).toMatchObject({ state: 'done', attempts: 1 });
      expect(await harness.queue.get(slow)).toMatchObject({ state: 'queued', attempts: 0, leaseToken: null });
      expect(slowSignal?.reason).toBeInstanceOf(JobRunnerStoppedError);
      expect(events.about(slow, 'released')).toHaveLength(1);
      expect(events.about(slow, 'lease-lost')).toHaveLength(0);

      let slowRuns = 0;
      const second = runner(harness, {
        handlers: {
          quick: () => {},
          slow: async (ctx) => {
            slowRuns++;
            expect(ctx.job.attempt).toBe(1);
            await ctx.complete((tx) => harness.insertRow(tx, 'slow', 'second'));
          },
        },
      });
      expect(await second.drain()).toBe(1);
      expect(slowRuns).toBe(1);
      expect(await harness.rows()).toEqual([
        { id: 'quick', tag: 'first' },
        { id: 'slow', tag: 'second' },
      ]);
    });

    it('resumes after its last finished step when a worker process is killed in the second step', async () => {
      const harness = await setUp();
      const { id } = await enqueue(harness, { topic: 'multi-step', payload: {} });
      await runCrashWorkerUntilSecondStep(harness.worker);
      const events = new EventRecorder();
      const steps: string[] = [];
      const jobs = runner(harness, {
        onEvent: events.onEvent,
        handlers: {
          'multi-step': async (ctx) => {
            await ctx.step('first', async (tx) => {
              steps.push('first');
              await harness.insertRow(tx, 'first:parent', 'parent');
            });
            await ctx.step('second', async (tx) => {
              steps.push('second');
              await harness.insertRow(tx, 'second:parent', 'parent');
            });
          },
        },
      });
      // The killed worker's lease (1 s) must lapse first: the runner sleeps until then.
      await jobs.start();
      await events.completed(id);
      expect(steps).toEqual(['second']);
      // The first step committed once, in the child; the child's second step rolled back with it.
      expect(await harness.rows()).toEqual([
        { id: 'first:child', tag: 'child' },
        { id: 'second:parent', tag: 'parent' },
      ]);
      expect(await harness.queue.get(id)).toMatchObject({ state: 'done', attempts: 2 });
    }, 30_000);
  });
}

/** Starts the crash fixture on `target`, waits until its job is inside its second step, and SIGKILLs it. */
function runCrashWorkerUntilSecondStep(target: WorkerTarget): Promise<void> {
  return runFixtureUntilThenKill(crashWorker, [JSON.stringify(target)], 'in-second-step');
}
