// The jobs table's statements on PostgreSQL. Every write of a held job matches its row by id,
// lease token and state 'running': that is the fence. Claims and reaps lock with SKIP LOCKED, so
// runners in many processes never wait on, nor take, the same rows.

export function jobStatements(table: string) {
  return {
    // DO NOTHING covers both the id and the (topic, dedupe_key) uniqueness. The NOTIFY is part
    // of the caller's transaction: delivered at its commit, dropped by its rollback.
    insert: `
      INSERT INTO ${table} (id, topic, payload, dedupe_key, state, run_at_ms, attempts, max_attempts, data,
        created_at_ms, updated_at_ms)
      VALUES ($1, $2, $3::jsonb, $4, 'queued', $5, 0, $6, '{}', $7, $7)
      ON CONFLICT DO NOTHING
      RETURNING id, pg_notify($8, topic)`,
    // READ COMMITTED: a conflicting row another transaction just committed is visible to this new statement.
    existingId: `
      SELECT id FROM ${table} WHERE id = $1
      UNION ALL
      (SELECT id FROM ${table} WHERE topic = $2 AND dedupe_key = $3)
      LIMIT 1`,
    // A lease that lapsed on the last attempt: the worker died with it, so the job is dead.
    exhaust: `
      UPDATE ${table} SET state = 'dead', last_error = $5, lease_token = NULL, lease_expires_at_ms = NULL,
        finished_at_ms = $2, updated_at_ms = $2
      WHERE id IN (
        SELECT id FROM ${table}
        WHERE state = 'running' AND lease_expires_at_ms <= $2 AND topic = ANY($1::text[])
          AND attempts >= coalesce(max_attempts, $4)
        ORDER BY lease_expires_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING *`,
    // One UPDATE … RETURNING: lapsed leases first (the oldest work), then due queued rows by
    // run_at, each locked with SKIP LOCKED; each claim counts an attempt and gets a fresh token.
    claim: `
      WITH lapsed AS (
        SELECT id FROM ${table}
        WHERE state = 'running' AND lease_expires_at_ms <= $2 AND topic = ANY($1::text[])
          AND attempts < coalesce(max_attempts, $5)
        ORDER BY lease_expires_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED
      ), due AS (
        SELECT id FROM ${table}
        WHERE state = 'queued' AND run_at_ms <= $2 AND topic = ANY($1::text[])
        ORDER BY run_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED
      ), picked AS (
        SELECT id FROM lapsed UNION ALL SELECT id FROM due LIMIT $3
      )
      UPDATE ${table} AS j SET state = 'running', attempts = j.attempts + 1,
        lease_token = gen_random_uuid()::text, lease_expires_at_ms = $2 + $4::bigint, updated_at_ms = $2
      FROM picked WHERE j.id = picked.id
      RETURNING j.*`,
    renew: `
      UPDATE ${table} SET lease_expires_at_ms = $3, updated_at_ms = $4
      WHERE id = $1 AND lease_token = $2 AND state = 'running'`,
    saveData: `
      UPDATE ${table} SET data = $3::jsonb, updated_at_ms = $4
      WHERE id = $1 AND lease_token = $2 AND state = 'running'`,
    complete: `
      UPDATE ${table} SET state = 'done', lease_token = NULL, lease_expires_at_ms = NULL,
        finished_at_ms = $3, updated_at_ms = $3
      WHERE id = $1 AND lease_token = $2 AND state = 'running'`,
    fail: `
      UPDATE ${table} SET state = $3::text, run_at_ms = coalesce($4::bigint, run_at_ms), last_error = $5,
        lease_token = NULL, lease_expires_at_ms = NULL,
        finished_at_ms = CASE WHEN $3::text = 'dead' THEN $6::bigint END, updated_at_ms = $6::bigint
      WHERE id = $1 AND lease_token = $2 AND state = 'running'`,
    // Back to the front of the queue (its run_at is unchanged), the claim's attempt taken back.
    release: `
      UPDATE ${table} SET state = 'queued', attempts = greatest(attempts - 1, 0), lease_token = NULL,
        lease_expires_at_ms = NULL, updated_at_ms = $3
      WHERE id = $1 AND lease_token = $2 AND state = 'running'`,
    reap: `
      DELETE FROM ${table} WHERE id IN (
        SELECT id FROM ${table} WHERE state IN ('done', 'dead') AND finished_at_ms <= $1
        ORDER BY finished_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    // Each subquery walks its partial index in order and stops at the first handled topic.
    nextDue: `
      SELECT
        (SELECT run_at_ms FROM ${table} WHERE state = 'queued' AND topic = ANY($1::text[])
          ORDER BY run_at_ms LIMIT 1) AS queued,
        (SELECT lease_expires_at_ms FROM ${table} WHERE state = 'running' AND topic = ANY($1::text[])
          ORDER BY lease_expires_at_ms LIMIT 1) AS lapse`,
    stats: `
      SELECT topic,
        count(*) FILTER (WHERE state = 'queued') AS queued, count(*) FILTER (WHERE state = 'running') AS running,
        count(*) FILTER (WHERE state = 'done') AS done, count(*) FILTER (WHERE state = 'dead') AS dead,
        sum(attempts) AS attempts,
        count(*) FILTER (WHERE state = 'queued' AND run_at_ms <= $1) AS due,
        min(run_at_ms) FILTER (WHERE state = 'queued' AND run_at_ms <= $1) AS oldest_due_run_at_ms
      FROM ${table} GROUP BY topic ORDER BY topic`,
    get: `SELECT * FROM ${table} WHERE id = $1`,
  };
}

export type JobStatementName = keyof ReturnType<typeof jobStatements>;
