// The operations table's statements on PostgreSQL. Every transition is one UPDATE whose WHERE
// names the states it may leave: under READ COMMITTED a concurrent change makes the UPDATE
// re-check that WHERE on the new row, so two racing transitions never both apply.

const open = `status IN ('notStarted', 'running')`;

export function operationStatements(table: string) {
  return {
    insert: `
      INSERT INTO ${table} (id, scope, kind, status, cancel_requested, job_id, version, created_at_ms, updated_at_ms)
      VALUES ($1, $2, $3, 'notStarted', false, $4, 1, $5, $5)
      ON CONFLICT (id) DO NOTHING
      RETURNING *`,
    get: `SELECT * FROM ${table} WHERE id = $1 AND scope = $2`,
    getById: `SELECT * FROM ${table} WHERE id = $1`,
    listFirst: `
      SELECT * FROM ${table} WHERE scope = $1
      ORDER BY created_at_ms DESC, id DESC LIMIT $2`,
    // The row comparison orders exactly as the ORDER BY (id is COLLATE "C", byte order).
    listAfter: `
      SELECT * FROM ${table} WHERE scope = $1 AND (created_at_ms, id) < ($3::bigint, $4::text)
      ORDER BY created_at_ms DESC, id DESC LIMIT $2`,
    start: `
      UPDATE ${table} SET status = 'running', version = version + 1, updated_at_ms = $2
      WHERE id = $1 AND status = 'notStarted'
      RETURNING *`,
    // Percent never goes down: a resumed job reporting from an earlier point leaves it as it was.
    progress: `
      UPDATE ${table} SET
        percent_complete = CASE WHEN $3::double precision IS NULL THEN percent_complete
          ELSE greatest(coalesce(percent_complete, 0), $3::double precision) END,
        processed = coalesce($4::bigint, processed), total = coalesce($5::bigint, total),
        version = version + 1, updated_at_ms = $2
      WHERE id = $1 AND status = 'running'
      RETURNING *`,
    succeed: `
      UPDATE ${table} SET status = 'succeeded', resource_location = $3,
        version = version + 1, updated_at_ms = $2, finished_at_ms = $2
      WHERE id = $1 AND ${open}
      RETURNING *`,
    fail: `
      UPDATE ${table} SET status = 'failed', error_code = $3, error_message = $4,
        version = version + 1, updated_at_ms = $2, finished_at_ms = $2
      WHERE id = $1 AND ${open}
      RETURNING *`,
    confirmCanceled: `
      UPDATE ${table} SET status = 'canceled', version = version + 1, updated_at_ms = $2, finished_at_ms = $2
      WHERE id = $1 AND status = 'running' AND cancel_requested
      RETURNING *`,
    // Not started: canceled at once. Running: marked, for the job to see. The SET reads the old row.
    cancel: `
      UPDATE ${table} SET
        status = CASE WHEN status = 'notStarted' THEN 'canceled' ELSE status END,
        finished_at_ms = CASE WHEN status = 'notStarted' THEN $2::bigint ELSE finished_at_ms END,
        cancel_requested = true, version = version + 1, updated_at_ms = $2
      WHERE id = $1 AND scope = $3
        AND (status = 'notStarted' OR (status = 'running' AND NOT cancel_requested))
      RETURNING *`,
    // SKIP LOCKED: reapers in several processes take different rows instead of waiting.
    reap: `
      DELETE FROM ${table} WHERE id IN (
        SELECT id FROM ${table} WHERE finished_at_ms IS NOT NULL AND finished_at_ms <= $1
        ORDER BY finished_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)`,
  };
}

export type OperationStatementName = keyof ReturnType<typeof operationStatements>;
