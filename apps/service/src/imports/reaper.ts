// Deletes operations past their retention (at least 24 h after they ended), in bounded batches
// on an interval in every process: a reap is one DELETE of at most a batch, so processes that
// reap at once only share the work. An import's result and orders stay; only the monitor goes.
import type { FastifyInstance } from 'fastify';
import type { OperationStore } from 'retrysafe/operations';
import { operationsReapBatch, operationsReapIntervalMs } from './settings.js';

/** Batches one pass deletes at most, so a backlog is worked off over passes, not in one burst. */
const maxBatchesPerPass = 10;

export function startOperationsReaper<Tx>(
  app: FastifyInstance,
  operations: OperationStore<Tx>,
  intervalMs: number = operationsReapIntervalMs,
): void {
  let running: Promise<void> | undefined;
  const pass = async () => {
    for (let batch = 0; batch < maxBatchesPerPass; batch++) {
      const reaped = await operations.reap(operations.now(), operationsReapBatch);
      if (reaped < operationsReapBatch) return;
    }
  };
  const timer = setInterval(() => {
    if (running !== undefined) return;
    running = pass()
      .catch((error: unknown) => app.log.warn({ err: error }, 'operations reaper failed'))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  // Stops before the data closes, and lets a pass under way finish.
  app.addHook('preClose', async () => {
    clearInterval(timer);
    await running;
  });
}
