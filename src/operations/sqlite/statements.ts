// The operations table's statements on SQLite, prepared once per store. Every transition is one
// UPDATE whose WHERE names the states it may leave: a refused move changes nothing.
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../../stores/sqlite/unit-of-work.js';

/** The states a transition may leave; terminal states are never among them. */
const open = `status IN ('notStarted', 'running')`;

function operationSql(table: string) {
  return {
    insert: `
      INSERT INTO ${table} (id, scope, kind, status, cancel_requested, job_id, version, created_at_ms, updated_at_ms)
      VALUES (@id, @scope, @kind, 'notStarted', 0, @jobId, 1, @nowMs, @nowMs)
      ON CONFLICT (id) DO NOTHING
      RETURNING *`,
    get: `SELECT * FROM ${table} WHERE id = @id AND scope = @scope`,
    getById: `SELECT * FROM ${table} WHERE id = ?`,
    listFirst: `
      SELECT * FROM ${table} WHERE scope = @scope
      ORDER BY created_at_ms DESC, id DESC LIMIT @limit`,
    listAfter: `
      SELECT * FROM ${table} WHERE scope = @scope AND (created_at_ms, id) < (@createdAtMs, @afterId)
      ORDER BY created_at_ms DESC, id DESC LIMIT @limit`,
    start: `
      UPDATE ${table} SET status = 'running', version = version + 1, updated_at_ms = @nowMs
      WHERE id = @id AND status = 'notStarted'
      RETURNING *`,
    // Percent never goes down: a resumed job reporting from an earlier point leaves it as it was.
    progress: `
      UPDATE ${table} SET
        percent_complete = CASE WHEN @percent IS NULL THEN percent_complete
          ELSE max(coalesce(percent_complete, 0), @percent) END,
        processed = coalesce(@processed, processed), total = coalesce(@total, total),
        version = version + 1, updated_at_ms = @nowMs
      WHERE id = @id AND status = 'running'
      RETURNING *`,
    succeed: `
      UPDATE ${table} SET status = 'succeeded', resource_location = @location,
        version = version + 1, updated_at_ms = @nowMs, finished_at_ms = @nowMs
      WHERE id = @id AND ${open}
      RETURNING *`,
    fail: `
      UPDATE ${table} SET status = 'failed', error_code = @code, error_message = @message,
        version = version + 1, updated_at_ms = @nowMs, finished_at_ms = @nowMs
      WHERE id = @id AND ${open}
      RETURNING *`,
    confirmCanceled: `
      UPDATE ${table} SET status = 'canceled', version = version + 1, updated_at_ms = @nowMs,
        finished_at_ms = @nowMs
      WHERE id = @id AND status = 'running' AND cancel_requested = 1
      RETURNING *`,
    // Not started: canceled at once. Running: marked, for the job to see. The SET reads the old row.
    cancel: `
      UPDATE ${table} SET
        status = CASE WHEN status = 'notStarted' THEN 'canceled' ELSE status END,
        finished_at_ms = CASE WHEN status = 'notStarted' THEN @nowMs ELSE finished_at_ms END,
        cancel_requested = 1, version = version + 1, updated_at_ms = @nowMs
      WHERE id = @id AND scope = @scope
        AND (status = 'notStarted' OR (status = 'running' AND cancel_requested = 0))
      RETURNING *`,
    reap: `
      DELETE FROM ${table} WHERE id IN (
        SELECT id FROM ${table} INDEXED BY ${table}_finished
        WHERE finished_at_ms IS NOT NULL AND finished_at_ms <= @finishedBeforeMs
        ORDER BY finished_at_ms LIMIT @limit)`,
  };
}

export type OperationStatements = Record<keyof ReturnType<typeof operationSql>, Statement>;

export function prepareOperationStatements(db: SqliteDatabase, table: string): OperationStatements {
  const sql = operationSql(table);
  return Object.fromEntries(
    Object.entries(sql).map(([name, text]) => [name, db.prepare(text)]),
  ) as OperationStatements;
}
