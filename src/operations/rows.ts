// Reading operation rows as either dialect returns them: SQLite hands integers as numbers and
// booleans as 0/1; pg hands bigint columns as strings.
import type { Operation, OperationStatus } from './types.js';

/** A row of the operations table, as selected with `*`. */
export interface OperationRow {
  id: string;
  scope: string;
  kind: string;
  status: OperationStatus;
  cancel_requested: number | boolean;
  percent_complete: number | string | null;
  processed: number | string | null;
  total: number | string | null;
  error_code: string | null;
  error_message: string | null;
  resource_location: string | null;
  job_id: string;
  version: number | string;
  created_at_ms: number | string;
  updated_at_ms: number | string;
  finished_at_ms: number | string | null;
}

export function toOperation(row: OperationRow): Operation {
  return {
    id: row.id,
    scope: row.scope,
    kind: row.kind,
    status: row.status,
    cancelRequested: row.cancel_requested === true || row.cancel_requested === 1,
    percentComplete: nullableNumber(row.percent_complete),
    processed: nullableNumber(row.processed),
    total: nullableNumber(row.total),
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    resourceLocation: row.resource_location,
    jobId: row.job_id,
    version: Number(row.version),
    createdAtMs: Number(row.created_at_ms),
    updatedAtMs: Number(row.updated_at_ms),
    finishedAtMs: nullableNumber(row.finished_at_ms),
  };
}

function nullableNumber(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}
