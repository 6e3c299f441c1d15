// The operation store contract: one set of cases both SQL dialects must pass against real
// databases — creation in the request's transaction, forward-only transitions (with a property
// test over racing workers), cancel, retention, waits, tenant isolation, and jobs run by the real
// runner, including a worker process SIGKILLed in the middle of a three-step job.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createJobRunner,
  type JobContext,
  type JobRunner,
  type JobRunnerOptions,
} from '../../src/effects/jobs/index.js';
import { ConflictError, ValidationError } from '../../src/http/problem.js';
import {
  type CreateOperationInput,
  isTerminal,
  type Operation,
  OperationFailedError,
  type OperationJobPayload,
  type OperationWork,
  operationJobId,
  runOperation,
  statusRank,
} from '../../src/operations/index.js';
import { EventRecorder, gate, ManualClock } from '../effects/jobs/support.js';
import {
  type HarnessOptions,
  type OperationsFactory,
  type OperationsHarness,
  runCrashWorkerUntil,
} from './support.js';

const hourMs = 60 * 60_000;
const dayMs = 24 * hourMs;

export function describeOperationStoreContract<Tx>(name: string, factory: OperationsFactory<Tx>) {
  describe(`${name} operation store contract`, () => {
    const cleanups: (() => Promise<void>)[] = [];

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    async function setUp(options: HarnessOptions = {}): Promise<OperationsHarness<Tx>> {
      const harness = await factory.create(options);
      cleanups.push(() => harness.cleanup());
      return harness;
    }

    function create(
      harness: OperationsHarness<Tx>,
      input: Partial<CreateOperationInput> = {},
    ): Promise<Operation> {
      return harness.store.transaction((tx) =>
        harness.store.create(tx, {
          scope: 'tenant-a',
          kind: 'export',
          jobTopic: harness.worker.topic,
          jobPayload: { rows: 3 },
          ...input,
        }),
      );
    }

    function runner(
      harness: OperationsHarness<Tx>,
      work: (work: OperationWork<Tx, unknown>) => Promise<string>,
      options: Omit<JobRunnerOptions<Tx>, 'queue' | 'handlers'> = {},
    ): JobRunner<Tx> {
      const created = createJobRunner<Tx>({
        queue: harness.queue,
        backoff: { scheduleMs: [0], jitter: 0 },
        ...options,
        handlers: {
          [harness.worker.topic]: (ctx: JobContext<Tx, OperationJobPayload>) =>
            runOperation(ctx, harness.store, work),
        },
      });
      cleanups.push(() => created.stop({ graceMs: 0 }));
      return created;
    }

    it('commits the operation and its job with the request, notStarted, the job naming the operation', async () => {
      const harness = await setUp();
      const operation = await harness.store.transaction(async (tx) => {
        await harness.insertRow(tx, 'export-request', 'request');
        return harness.store.create(tx, {
          scope: 'tenant-a',
          kind: 'export',
          jobTopic: harness.worker.topic,
          jobPayload: { rows: 3 },
        });
      });
      expect(operation).toMatchObject({
        scope: 'tenant-a',
        kind: 'export',
        status: 'notStarted',
        cancelRequested: false,
        percentComplete: null,
        error: null,
        resourceLocation: null,
        jobId: operationJobId(operation.id),
        version: 1,
        finishedAtMs: null,
      });
      expect(await harness.store.get('tenant-a', operation.id)).toEqual(operation);
      const job = await harness.queue.get(operation.jobId);
      expect(job).toMatchObject({
        topic: harness.worker.topic,
        state: 'queued',
        payload: { operationId: operation.id, input: { rows: 3 } } satisfies OperationJobPayload,
      });
      expect(await harness.rows()).toEqual([{ id: 'export-request', tag: 'request' }]);
    });

    it('leaves neither operation nor job when the request transaction rolls back', async () => {
      const harness = await setUp();
      await expect(
        harness.store.transaction(async (tx) => {
          await harness.insertRow(tx, 'export-request', 'request');
          await harness.store.create(tx, {
            id: 'rolled-back',
            scope: 'tenant-a',
            kind: 'export',
            jobTopic: harness.worker.topic,
            jobPayload: {},
          });
          throw new Error('the request failed after creating its operation');
        }),
      ).rejects.toThrow('the request failed');
      expect(await harness.store.getById('rolled-back')).toBeUndefined();
      expect(await harness.queue.get(operationJobId('rolled-back'))).toBeUndefined();
      expect((await harness.store.list('tenant-a')).operations).toEqual([]);
      expect(await harness.rows()).toEqual([]);
    });

    it('returns the existing operation for a repeated id in its scope, enqueues once, and refuses it to another scope', async () => {
      const harness = await setUp();
      const first = await create(harness, { id: 'derived-from-record' });
      const again = await create(harness, { id: 'derived-from-record', jobPayload: { other: true } });
      expect(again).toEqual(first);
      expect((await harness.queue.stats(Date.now())).queued).toBe(1);
      await expect(create(harness, { id: 'derived-from-record', scope: 'tenant-b' })).rejects.toBeInstanceOf(
        ConflictError,
      );
      expect(await harness.store.get('tenant-b', 'derived-from-record')).toBeUndefined();
    });

    it('moves only forward: each transition applies once, and a terminal state never changes', async () => {
      const harness = await setUp();
      const { id } = await create(harness);
      expect(await harness.store.progress(id, { percentComplete: 10 })).toMatchObject({
        applied: false,
        operation: { status: 'notStarted', percentComplete: null },
      });
      expect(await harness.store.start(id)).toMatchObject({
        applied: true,
        operation: { status: 'running' },
      });
      expect(await harness.store.start(id)).toMatchObject({
        applied: false,
        operation: { status: 'running' },
      });
      await harness.store.progress(id, { percentComplete: 60, processed: 6, total: 10 });
      // A lower percent reported later (a resumed run) leaves it where it was.
      expect(await harness.store.progress(id, { percentComplete: 40, processed: 7 })).toMatchObject({
        applied: true,
        operation: { percentComplete: 60, processed: 7, total: 10 },
      });
      expect(await harness.store.confirmCanceled(id)).toMatchObject({ applied: false });
      const succeeded = await harness.store.succeed(id, '/exports/1');
      expect(succeeded).toMatchObject({
        applied: true,
        operation: { status: 'succeeded', resourceLocation: '/exports/1' },
      });
      const ended = succeeded.operation!;
      expect(ended.finishedAtMs).not.toBeNull();
      for (const refused of [
        await harness.store.start(id),
        await harness.store.progress(id, { percentComplete: 100 }),
        await harness.store.fail(id, { code: 'late', message: 'too late' }),
        await harness.store.succeed(id, '/exports/2'),
        await harness.store.confirmCanceled(id),
      ]) {
        expect(refused).toEqual({ applied: false, operation: ended });
      }
      expect(await harness.store.cancel('tenant-a', id)).toEqual({ outcome: 'terminal', operation: ended });
      expect(await harness.store.getById(id)).toEqual(ended);
      expect(await harness.store.start('no-such-operation')).toEqual({
        applied: false,
        operation: undefined,
      });
    });

    it('fails with its error, from notStarted or running', async () => {
      const harness = await setUp();
      const early = await create(harness);
      expect(
        await harness.store.fail(early.id, { code: 'bad-input', message: 'column 3 is empty' }),
      ).toMatchObject({
        applied: true,
        operation: { status: 'failed', error: { code: 'bad-input', message: 'column 3 is empty' } },
      });
      const late = await create(harness);
      await harness.store.start(late.id);
      expect(await harness.store.fail(late.id, { code: 'quota', message: 'over quota' })).toMatchObject({
        applied: true,
        operation: { status: 'failed', error: { code: 'quota' } },
      });
    });

    it('cancels a notStarted operation at once, and a running one when its job confirms', async () => {
      const harness = await setUp();
      const waiting = await create(harness);
      const canceled = await harness.store.cancel('tenant-a', waiting.id);
      expect(canceled).toMatchObject({ outcome: 'canceled', operation: { status: 'canceled' } });
      expect(canceled.operation?.finishedAtMs).not.toBeNull();
      expect(await harness.store.start(waiting.id)).toMatchObject({
        applied: false,
        operation: { status: 'canceled' },
      });

      const running = await create(harness);
      await harness.store.start(running.id);
      expect(await harness.store.cancel('tenant-a', running.id)).toMatchObject({
        outcome: 'cancel-requested',
        operation: { status: 'running', cancelRequested: true },
      });
      // Asked again: still on its way, nothing changes.
      const requested = await harness.store.getById(running.id);
      expect(await harness.store.cancel('tenant-a', running.id)).toEqual({
        outcome: 'cancel-requested',
        operation: requested,
      });
      expect(await harness.store.confirmCanceled(running.id)).toMatchObject({
        applied: true,
        operation: { status: 'canceled' },
      });
      expect(await harness.store.cancel('tenant-a', running.id)).toMatchObject({
        outcome: 'terminal',
        operation: { status: 'canceled' },
      });
    });

    it('never moves backwards nor out of a terminal state under random interleavings of workers and cancels', async () => {
      const harness = await setUp();
      const command = fc.oneof(
        fc.constant({ type: 'start' as const }),
        fc.integer({ min: 0, max: 100 }).map((percent) => ({ type: 'progress' as const, percent })),
        fc.constant({ type: 'succeed' as const }),
        fc.constant({ type: 'fail' as const }),
        fc.constant({ type: 'cancel' as const }),
        fc.constant({ type: 'confirmCanceled' as const }),
      );
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(command, { minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 4 }),
          async (workers) => {
            const { id } = await create(harness, { id: `property-${++runs}` });
            const seen: Operation[] = [];
            const terminalApplied: string[] = [];
            await Promise.all(
              workers.map(async (commands, worker) => {
                for (const step of commands) {
                  const store = harness.store;
                  let operation: Operation | undefined;
                  if (step.type === 'cancel') {
                    const outcome = await store.cancel('tenant-a', id);
                    operation = outcome.operation;
                    if (outcome.outcome === 'canceled') terminalApplied.push('canceled');
                  } else {
                    const outcome =
                      step.type === 'start'
                        ? await store.start(id)
                        : step.type === 'progress'
                          ? await store.progress(id, { percentComplete: step.percent })
                          : step.type === 'succeed'
                            ? await store.succeed(id, `/results/${worker}`)
                            : step.type === 'fail'
                              ? await store.fail(id, { code: `worker-${worker}`, message: 'failed' })
                              : await store.confirmCanceled(id);
                    operation = outcome.operation;
                    if (outcome.applied && operation !== undefined && isTerminal(operation.status))
                      terminalApplied.push(operation.status);
                  }
                  if (operation !== undefined) seen.push(operation);
                }
              }),
            );
            const final = (await harness.store.getById(id))!;
            seen.push(final);
            // At most one transition ever ended it, and the row kept that ending.
            expect(terminalApplied.length).toBeLessThanOrEqual(1);
            if (terminalApplied[0] !== undefined) expect(final.status).toBe(terminalApplied[0]);
            // Ordered by version, the observed statuses only move forward; once ended, nothing changes.
            const byVersion = [...seen].sort((a, b) => a.version - b.version);
            for (let n = 1; n < byVersion.length; n++) {
              const before = byVersion[n - 1]!;
              const after = byVersion[n]!;
              expect(statusRank(after.status)).toBeGreaterThanOrEqual(statusRank(before.status));
              if (before.version === after.version) expect(after).toEqual(before);
              if (isTerminal(before.status)) expect(after).toEqual(before);
              expect(after.percentComplete ?? 0).toBeGreaterThanOrEqual(before.percentComplete ?? 0);
            }
          },
        ),
        { numRuns: 30 },
      );
    }, 30_000);

    it('reaps ended operations only after retention, in bounded batches, never running ones', async () => {
      const clock = new ManualClock();
      const harness = await setUp({ now: clock.now, retentionMs: 2 * hourMs });
      const running = await create(harness);
      await harness.store.start(running.id);
      const ended: string[] = [];
      for (let n = 0; n < 3; n++) {
        const { id } = await create(harness);
        await harness.store.fail(id, { code: 'x', message: 'y' });
        ended.push(id);
      }
      clock.advance(2 * hourMs - 1);
      expect(await harness.store.reap(clock.now(), 10)).toBe(0);
      clock.advance(1);
      expect(await harness.store.reap(clock.now(), 2)).toBe(2);
      expect(await harness.store.reap(clock.now(), 2)).toBe(1);
      expect(await harness.store.reap(clock.now(), 2)).toBe(0);
      for (const id of ended) expect(await harness.store.getById(id)).toBeUndefined();
      clock.advance(30 * dayMs);
      expect(await harness.store.reap(clock.now(), 10)).toBe(0);
      expect(await harness.store.getById(running.id)).toMatchObject({ status: 'running' });
      await expect(harness.store.reap(clock.now(), 0)).rejects.toThrow(/reap limit/);
    });

    it('waitFor resolves with the ended operation once its job succeeds, before its timeout', async () => {
      const harness = await setUp();
      const { id } = await create(harness);
      await harness.store.start(id);
      // Far beyond this test's own timeout: only the completion can end the wait in time.
      const waiting = harness.store.waitFor('tenant-a', id, { timeoutMs: 100_000 });
      await harness.store.progress(id, { percentComplete: 50 });
      await harness.store.succeed(id, '/exports/9');
      expect(await waiting).toMatchObject({ status: 'succeeded', resourceLocation: '/exports/9' });
    }, 10_000);

    it('waitFor hears a change committed inside a transaction', async () => {
      const harness = await setUp({ waitPollMs: 50 });
      const { id } = await create(harness);
      await harness.store.start(id);
      const waiting = harness.store.waitFor('tenant-a', id, { timeoutMs: 100_000 });
      await harness.store.transaction(async (tx) => {
        await harness.insertRow(tx, 'result', 'result');
        await harness.store.succeed(id, '/results/1', tx);
      });
      expect(await waiting).toMatchObject({ status: 'succeeded' });
    }, 10_000);

    it('waitFor answers the operation as it is when the timeout passes or the caller aborts', async () => {
      const harness = await setUp();
      const { id } = await create(harness);
      await harness.store.start(id);
      expect(await harness.store.waitFor('tenant-a', id, { timeoutMs: 20 })).toMatchObject({
        status: 'running',
      });
      const controller = new AbortController();
      const waiting = harness.store.waitFor('tenant-a', id, {
        timeoutMs: 100_000,
        signal: controller.signal,
      });
      controller.abort();
      expect(await waiting).toMatchObject({ status: 'running' });
      expect(await harness.store.waitFor('tenant-a', 'absent', { timeoutMs: 100_000 })).toBeUndefined();
    }, 10_000);

    it('keeps each tenant to its own operations: another scope gets nothing for get, list, cancel and waitFor', async () => {
      const harness = await setUp();
      const mine = await create(harness, { scope: 'tenant-a' });
      const theirs = await create(harness, { scope: 'tenant-b' });
      expect(await harness.store.get('tenant-b', mine.id)).toBeUndefined();
      expect(await harness.store.cancel('tenant-b', mine.id)).toEqual({
        outcome: 'not-found',
        operation: undefined,
      });
      expect(await harness.store.getById(mine.id)).toMatchObject({
        status: 'notStarted',
        cancelRequested: false,
      });
      expect(await harness.store.waitFor('tenant-b', mine.id, { timeoutMs: 100_000 })).toBeUndefined();
      expect((await harness.store.list('tenant-a')).operations.map((operation) => operation.id)).toEqual([
        mine.id,
      ]);
      expect((await harness.store.list('tenant-b')).operations.map((operation) => operation.id)).toEqual([
        theirs.id,
      ]);
    });

    it('lists a scope newest first in stable pages, ties broken by id, every operation once', async () => {
      const clock = new ManualClock();
      const harness = await setUp({ now: clock.now });
      const created: Operation[] = [];
      for (let n = 0; n < 7; n++) {
        // Pairs share a creation time: the id orders them.
        if (n % 2 === 0) clock.advance(1000);
        created.push(await create(harness, { id: `op-${n}` }));
      }
      await create(harness, { scope: 'tenant-b' });
      const expected = [...created]
        .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1))
        .map((operation) => operation.id);
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await harness.store.list(
          'tenant-a',
          cursor === undefined ? { limit: 3 } : { limit: 3, cursor },
        );
        pages.push(page.operations.map((operation) => operation.id));
        // Created between pages: newer than the cursor, so it never shifts the pages after it.
        if (pages.length === 1) await create(harness, { id: 'op-late' });
        cursor = page.nextCursor;
      } while (cursor !== undefined && pages.length < 10);
      expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
      expect(pages.flat()).toEqual(expected);
      await expect(harness.store.list('tenant-a', { cursor: 'not-a-cursor' })).rejects.toMatchObject({
        status: 400,
      });
      await expect(harness.store.list('tenant-a', { limit: 101 })).rejects.toMatchObject({ status: 400 });
    });

    it('runs a three-step operation to success with progress, through the job runner', async () => {
      const harness = await setUp();
      const { id } = await create(harness);
      const ran: string[] = [];
      const jobs = runner(harness, async (work) => {
        for (const [n, name] of ['one', 'two', 'three'].entries()) {
          await work.step(name, (tx) => {
            ran.push(name);
            return harness.insertRow(tx, name, 'parent');
          });
          await work.progress({
            percentComplete: Math.round(((n + 1) / 3) * 100),
            processed: n + 1,
            total: 3,
          });
        }
        return `/exports/${work.operation.id}`;
      });
      expect(await jobs.drain()).toBe(1);
      expect(ran).toEqual(['one', 'two', 'three']);
      expect(await harness.store.get('tenant-a', id)).toMatchObject({
        status: 'succeeded',
        resourceLocation: `/exports/${id}`,
        percentComplete: 100,
        processed: 3,
        total: 3,
      });
      expect(await harness.queue.get(operationJobId(id))).toMatchObject({ state: 'done', attempts: 1 });
    });

    it('ends a running operation as canceled when a cancel comes during its run: the next step never runs', async () => {
      const harness = await setUp();
      const { id } = await create(harness);
      const afterStepOne = gate();
      const release = gate();
      const ran: string[] = [];
      const jobs = runner(harness, async (work) => {
        await work.step('one', () => void ran.push('one'));
        // Between steps, where no transaction is open (a SQLite step holds the write lock).
        afterStepOne.open();
        await release.promise;
        await work.step('two', () => void ran.push('two'));
        return '/never';
      });
      const draining = jobs.drain();
      await afterStepOne.promise;
      expect(await harness.store.cancel('tenant-a', id)).toMatchObject({ outcome: 'cancel-requested' });
      release.open();
      expect(await draining).toBe(1);
      expect(ran).toEqual(['one']);
      expect(await harness.store.getById(id)).toMatchObject({ status: 'canceled', resourceLocation: null });
      expect(await harness.queue.get(operationJobId(id))).toMatchObject({ state: 'done' });
    });

    it('runs nothing for an operation canceled before its job started', async () => {
      const harness = await setUp();
      const { id } = await create(harness);
      await harness.store.cancel('tenant-a', id);
      let ran = false;
      const jobs = runner(harness, async () => {
        ran = true;
        return '/never';
      });
      expect(await jobs.drain()).toBe(1);
      expect(ran).toBe(false);
      expect(await harness.store.getById(id)).toMatchObject({ status: 'canceled' });
      expect(await harness.queue.get(operationJobId(id))).toMatchObject({ state: 'done' });
    });

    it('fails at once on a permanent error (OperationFailedError or a 4xx problem), with its code and message', async () => {
      const harness = await setUp();
      const declined = await create(harness, { jobPayload: { kind: 'declined' } });
      const invalid = await create(harness, { jobPayload: { kind: 'invalid' } });
      const jobs = runner(
        harness,
        async (work) => {
          if ((work.input as { kind: string }).kind === 'declined')
            throw new OperationFailedError('payment-declined', 'the card was declined');
          throw new ValidationError([], 'the export asks for an unknown column');
        },
        { maxAttempts: 5 },
      );
      expect(await jobs.drain()).toBe(2);
      expect(await harness.store.getById(declined.id)).toMatchObject({
        status: 'failed',
        error: { code: 'payment-declined', message: 'the card was declined' },
      });
      const failed = await harness.store.getById(invalid.id);
      expect(failed?.error?.message).toBe('the export asks for an unknown column');
      expect(failed?.error?.code).toBe('validation');
      for (const { id } of [declined, invalid])
        expect(await harness.queue.get(operationJobId(id))).toMatchObject({ state: 'done', attempts: 1 });
    });

    it('retries a transient error, resuming after its finished steps, and fails the operation on the last attempt', async () => {
      const harness = await setUp();
      const flaky = await create(harness, { jobPayload: { kind: 'flaky' } });
      const broken = await create(harness, { jobPayload: { kind: 'broken' } });
      const ran: string[] = [];
      const jobs = runner(
        harness,
        async (work) => {
          const kind = (work.input as { kind: string }).kind;
          await work.step('one', () => void ran.push(`${kind}:one`));
          await work.step('two', () => {
            ran.push(`${kind}:two`);
            if (kind === 'broken' || ran.filter((entry) => entry === 'flaky:two').length === 1)
              throw new Error('the warehouse timed out');
          });
          return '/done';
        },
        { maxAttempts: 3 },
      );
      await jobs.drain();
      expect(ran.filter((entry) => entry === 'flaky:one')).toHaveLength(1);
      expect(ran.filter((entry) => entry === 'flaky:two')).toHaveLength(2);
      expect(await harness.store.getById(flaky.id)).toMatchObject({ status: 'succeeded' });
      expect(ran.filter((entry) => entry === 'broken:two')).toHaveLength(3);
      const failed = await harness.store.getById(broken.id);
      expect(failed).toMatchObject({ status: 'failed', error: { code: 'internal-error' } });
      // What the client reads reveals nothing of the error; the job keeps it.
      expect(failed?.error?.message).not.toContain('warehouse');
      expect(await harness.queue.get(operationJobId(broken.id))).toMatchObject({
        state: 'dead',
        lastError: 'Error: the warehouse timed out',
      });
    });

    it('resumes at the first unfinished step when the worker process is SIGKILLed in the middle of the job', async () => {
      const harness = await setUp();
      const { id } = await create(harness);
      await runCrashWorkerUntil(harness.worker, 'in-step-two');
      // The killed worker finished step one and reported its progress.
      expect(await harness.store.getById(id)).toMatchObject({ status: 'running', percentComplete: 33 });
      const events = new EventRecorder();
      const ran: string[] = [];
      const jobs = runner(
        harness,
        async (work) => {
          for (const name of ['one', 'two', 'three']) {
            await work.step(name, (tx) => {
              ran.push(name);
              return harness.insertRow(tx, `${name}:parent`, 'parent');
            });
          }
          await work.progress({ percentComplete: 100 });
          return `/exports/${work.operation.id}`;
        },
        { onEvent: events.onEvent },
      );
      // The killed worker's lease (1 s) must lapse first: the runner sleeps until then.
      const waiting = harness.store.waitFor('tenant-a', id, { timeoutMs: 25_000 });
      await jobs.start();
      await events.completed(operationJobId(id));
      expect(ran).toEqual(['two', 'three']);
      expect(await waiting).toMatchObject({ status: 'succeeded', resourceLocation: `/exports/${id}` });
      // Step one committed once, in the child; the child's step two rolled back with it.
      expect(await harness.rows()).toEqual([
        { id: 'one:child', tag: 'child' },
        { id: 'three:parent', tag: 'parent' },
        { id: 'two:parent', tag: 'parent' },
      ]);
      expect(await harness.queue.get(operationJobId(id))).toMatchObject({ state: 'done', attempts: 2 });
    }, 30_000);
  });
}
