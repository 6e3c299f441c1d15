// One import's result from its batches' rows: counts summed, errors in input order.
import type { ImportOrderError, ImportResult } from './types.js';

export interface BatchRow {
  created: number | string;
  failed: number | string;
  errors: string;
}

export function resultOf(rows: readonly BatchRow[]): ImportResult {
  let created = 0;
  let failed = 0;
  const errors: ImportOrderError[] = [];
  for (const row of rows) {
    created += Number(row.created);
    failed += Number(row.failed);
    errors.push(...(JSON.parse(row.errors) as ImportOrderError[]));
  }
  errors.sort((a, b) => a.index - b.index);
  return { created, failed, errors };
}
