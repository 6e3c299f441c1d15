// The jobs table's statements on SQLite, prepared once per queue. Every write of a held job
// matches its row by id, lease token and state 'running': that is the fence.
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../../../stores/sqlite/unit-of-work.js';

/** `topic IN (…)` for a JSON array of topics bound as @topics (SQLite has no array parameter). */
const handledTopic = 'topic IN (SELECT value FROM json_each(@topics))';

/**
 * The scans name their partial index: without it SQLite's planner prefers the (topic,
 * dedupe_key) index for `topic IN (…)`, then reads and sorts every row of the topic per claim.
 * Walking the index in time order instead costs only the rows up to the batch (plus due rows of
 * topics this runner has no handler for, which it steps over).
 */
const due = (table: string) => `${table} INDEXED BY ${table}_due`;
const leases = (table: string) => `${table} INDEXED BY ${table}_leases`;

function jobSql(table: string) {
  return {
    // DO NOTHING covers both the id and the (topic, dedupe_key) uniqueness; other constraints still fail.
    insert: `
      INSERT INTO ${table} (id, topic, payload, dedupe_key, state, run_at_ms, attempts, max_attempts, data,
        created_at_ms, updated_at_ms)
      VALUES (@id, @topic, @payload, @dedupeKey, 'queued', @runAtMs, 0, @maxAttempts, '{}', @nowMs, @nowMs)
      ON CONFLICT DO NOTHING`,
    idOf: `SELECT id FROM ${table} WHERE id = ?`,
    idOfDedupeKey: `SELECT id FROM ${table} WHERE topic = ? AND dedupe_key = ?`,
    // A lease that lapsed on the last attempt: the worker died with it, so the job is dead.
    exhaust: `
      UPDATE ${table} SET state = 'dead', last_error = @error, lease_token = NULL, lease_expires_at_ms = NULL,
        finished_at_ms = @nowMs, updated_at_ms = @nowMs
      WHERE id IN (
        SELECT id FROM ${leases(table)}
        WHERE state = 'running' AND lease_expires_at_ms <= @nowMs AND ${handledTopic}
          AND attempts >= coalesce(max_attempts, @defaultMaxAttempts)
        ORDER BY lease_expires_at_ms LIMIT @limit)
      RETURNING *`,
    // Lapsed leases first (they are the oldest work), then due queued rows by run_at; each claim
    // counts an attempt and gets a fresh random token. One statement, under the write lock.
    claim: `
      UPDATE ${table} SET state = 'running', attempts = attempts + 1, lease_token = lower(hex(randomblob(16))),
        lease_expires_at_ms = @nowMs + @leaseMs, updated_at_ms = @nowMs
      WHERE id IN (
        SELECT id FROM (
          SELECT id FROM ${leases(table)}
          WHERE state = 'running' AND lease_expires_at_ms <= @nowMs AND ${handledTopic}
            AND attempts < coalesce(max_attempts, @defaultMaxAttempts)
          ORDER BY lease_expires_at_ms LIMIT @limit)
        UNION ALL
        SELECT id FROM (
          SELECT id FROM ${due(table)}
          WHERE state = 'queued' AND run_at_ms <= @nowMs AND ${handledTopic}
          ORDER BY run_at_ms LIMIT @limit)
        LIMIT @limit)
      RETURNING *`,
    renew: `
      UPDATE ${table} SET lease_expires_at_ms = @leaseExpiresAtMs, updated_at_ms = @nowMs
      WHERE id = @id AND lease_token = @token AND state = 'running'`,
    saveData: `
      UPDATE ${table} SET data = @data, updated_at_ms = @nowMs
      WHERE id = @id AND lease_token = @token AND state = 'running'`,
    complete: `
      UPDATE ${table} SET state = 'done', lease_token = NULL, lease_expires_at_ms = NULL,
        finished_at_ms = @nowMs, updated_at_ms = @nowMs
      WHERE id = @id AND lease_token = @token AND state = 'running'`,
    fail: `
      UPDATE ${table} SET state = @state, run_at_ms = coalesce(@runAtMs, run_at_ms), last_error = @error,
        lease_token = NULL, lease_expires_at_ms = NULL,
        finished_at_ms = CASE WHEN @state = 'dead' THEN @nowMs END, updated_at_ms = @nowMs
      WHERE id = @id AND lease_token = @token AND state = 'running'`,
    // Back to the front of the queue (its run_at is unchanged), the claim's attempt taken back.
    release: `
      UPDATE ${table} SET state = 'queued', attempts = max(attempts - 1, 0), lease_token = NULL,
        lease_expires_at_ms = NULL, updated_at_ms = @nowMs
      WHERE id = @id AND lease_token = @token AND state = 'running'`,
    reap: `
      DELETE FROM ${table} WHERE id IN (
        SELECT id FROM ${table} INDEXED BY ${table}_finished
        WHERE state IN ('done', 'dead') AND finished_at_ms <= @finishedBeforeMs
        ORDER BY finished_at_ms LIMIT @limit)`,
    // Each walks its partial index in order and stops at the first handled topic.
    nextQueued: `
      SELECT run_at_ms AS at FROM ${due(table)} WHERE state = 'queued' AND ${handledTopic}
      ORDER BY run_at_ms LIMIT 1`,
    nextLapse: `
      SELECT lease_expires_at_ms AS at FROM ${leases(table)} WHERE state = 'running' AND ${handledTopic}
      ORDER BY lease_expires_at_ms LIMIT 1`,
    stats: `
      SELECT topic,
        sum(state = 'queued') AS queued, sum(state = 'running') AS running,
        sum(state = 'done') AS done, sum(state = 'dead') AS dead, sum(attempts) AS attempts,
        sum(state = 'queued' AND run_at_ms <= @nowMs) AS due,
        min(CASE WHEN state = 'queued' AND run_at_ms <= @nowMs THEN run_at_ms END) AS oldest_due_run_at_ms
      FROM ${table} GROUP BY topic ORDER BY topic`,
    get: `SELECT * FROM ${table} WHERE id = ?`,
  };
}

export type JobStatements = Record<keyof ReturnType<typeof jobSql>, Statement>;

export function prepareJobStatements(db: SqliteDatabase, table: string): JobStatements {
  const sql = jobSql(table);
  return Object.fromEntries(
    Object.entries(sql).map(([name, text]) => [name, db.prepare(text)]),
  ) as JobStatements;
}
