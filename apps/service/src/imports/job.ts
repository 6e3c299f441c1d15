// The import's job: the input in batches, each batch one step of the job (its orders, their
// import tag and the batch's result commit with the step's checkpoint), so a process killed at
// any point resumes after the last committed batch and never imports an order twice. Bad
// orders are reported, not fatal: the operation succeeds with the result's location.
import type { FastifyBaseLogger } from 'fastify';
import type { JobContext, JobHandler } from 'retrysafe/effects';
import { type OperationJobPayload, runOperation } from 'retrysafe/operations';
import type { ServiceData } from '../data/types.js';
import { checkImportedOrder } from './order-validation.js';
import { importedOrder, importedOrderId, importPath } from './orders.js';
import { importBatchSize } from './settings.js';
import type { ImportBatchResult } from './types.js';

/** What the job's payload carries: the orders wait in the import's row (job payloads stay small). */
export interface ImportJobInput {
  tenant: string;
  total: number;
}

export interface ImportJobDeps<Tx> {
  data: ServiceData<Tx>;
  log: FastifyBaseLogger;
  /** Test hook: a pause after each committed batch (0: none). */
  batchPauseMs: number;
}

export function importJobHandler<Tx>(
  deps: ImportJobDeps<Tx>,
): JobHandler<Tx, OperationJobPayload<ImportJobInput>> {
  const { data } = deps;
  return async (context) => {
    try {
      return await run(context);
    } finally {
      await dropInputIfEnded(context.job.payload);
    }
  };

  /** Canceled or failed (at once, or on the last attempt): the input will not be read again. */
  async function dropInputIfEnded(payload: OperationJobPayload<ImportJobInput> | undefined) {
    if (typeof payload?.operationId !== 'string' || typeof payload.input?.tenant !== 'string') return;
    const { operationId, input } = payload;
    const ended = await data.operations.getById(operationId).catch(() => undefined);
    if (ended?.status !== 'canceled' && ended?.status !== 'failed') return;
    // Best effort: a failure here leaves the input, which only costs space.
    await data.transaction((tx) => data.imports.finish(tx, input.tenant, operationId)).catch(() => {});
  }

  function run(context: JobContext<Tx, OperationJobPayload<ImportJobInput>>) {
    return runOperation(context, data.operations, async (work) => {
      const { tenant, total } = work.input;
      const id = work.operation.id;
      // Read once per run, and only by a batch that runs: done batches are skipped by their checkpoints.
      let input: unknown[] | undefined;
      const batches = Math.ceil(total / importBatchSize);
      for (let batch = 0; batch < batches; batch++) {
        const start = batch * importBatchSize;
        const end = Math.min(start + importBatchSize, total);
        await work.step(`batch:${batch}`, async (tx) => {
          input ??= await data.imports.input(tx, tenant, id);
          if (input === undefined) throw new Error(`import ${id} has no input left for its batch ${batch}`);
          const result: ImportBatchResult = { created: 0, failed: 0, errors: [] };
          const created: string[] = [];
          for (let index = start; index < end; index++) {
            const check = checkImportedOrder(input[index]);
            if (!check.ok) {
              result.failed++;
              result.errors.push({ index, errors: check.errors });
              continue;
            }
            const order = await data.orders.insertOnce(
              tx,
              importedOrder(tenant, check.input, importedOrderId(id, index)),
            );
            created.push(order.id);
            result.created++;
          }
          await data.imports.writeBatch(tx, { tenant, id }, batch, created, result);
          // The checkpoint stays small: the errors live in the batch's row.
          return { created: result.created, failed: result.failed };
        });
        await work.progress({ processed: end, total, percentComplete: Math.floor((end * 100) / total) });
        if (deps.batchPauseMs > 0 && end < total) {
          deps.log.info({ operationId: id, batch }, 'test hook: import batch committed');
          await pause(deps.batchPauseMs, work.signal);
        }
      }
      await work.step('finish', (tx) => data.imports.finish(tx, tenant, id));
      return importPath(id);
    });
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
