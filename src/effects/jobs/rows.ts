// Reading job rows and counts as either dialect returns them: SQLite hands JSON as text and
// integers as numbers; pg hands jsonb parsed and bigint columns as strings.
import type { RecordData } from '../../idempotency/store.js';
import type { JobRecord, JobState, QueueStats, TopicStats } from './types.js';

/** A row of the jobs table, as selected with `*`. */
export interface JobRow {
  id: string;
  topic: string;
  payload: unknown;
  dedupe_key: string | null;
  state: JobState;
  run_at_ms: number | string;
  attempts: number | string;
  max_attempts: number | string | null;
  lease_token: string | null;
  lease_expires_at_ms: number | string | null;
  last_error: string | null;
  data: unknown;
  created_at_ms: number | string;
  updated_at_ms: number | string;
  finished_at_ms: number | string | null;
}

/** How a dialect returns JSON columns: as text to parse (SQLite) or parsed already (jsonb). */
export type JsonColumns = 'text' | 'parsed';

export function toJobRecord(row: JobRow, json: JsonColumns): JobRecord {
  return {
    id: row.id,
    topic: row.topic,
    payload: json === 'text' ? JSON.parse(row.payload as string) : row.payload,
    dedupeKey: row.dedupe_key,
    state: row.state,
    runAtMs: Number(row.run_at_ms),
    attempts: Number(row.attempts),
    maxAttempts: nullableNumber(row.max_attempts),
    leaseToken: row.lease_token,
    leaseExpiresAtMs: nullableNumber(row.lease_expires_at_ms),
    lastError: row.last_error,
    data: (json === 'text' ? JSON.parse(row.data as string) : row.data) as RecordData,
    createdAtMs: Number(row.created_at_ms),
    updatedAtMs: Number(row.updated_at_ms),
    finishedAtMs: nullableNumber(row.finished_at_ms),
  };
}

/** One topic's counts, as both dialects' stats query returns them. */
export interface TopicStatsRow {
  topic: string;
  queued: number | string | null;
  running: number | string | null;
  done: number | string | null;
  dead: number | string | null;
  attempts: number | string | null;
  due: number | string | null;
  oldest_due_run_at_ms: number | string | null;
}

export function toQueueStats(rows: TopicStatsRow[], nowMs: number): QueueStats {
  const total: TopicStats = {
    queued: 0,
    running: 0,
    done: 0,
    dead: 0,
    attempts: 0,
    due: 0,
    oldestDueAgeMs: 0,
  };
  const topics: Record<string, TopicStats> = {};
  for (const row of rows) {
    const oldest = nullableNumber(row.oldest_due_run_at_ms);
    const stats: TopicStats = {
      queued: Number(row.queued ?? 0),
      running: Number(row.running ?? 0),
      done: Number(row.done ?? 0),
      dead: Number(row.dead ?? 0),
      attempts: Number(row.attempts ?? 0),
      due: Number(row.due ?? 0),
      oldestDueAgeMs: oldest === null ? 0 : Math.max(0, nowMs - oldest),
    };
    topics[row.topic] = stats;
    total.queued += stats.queued;
    total.running += stats.running;
    total.done += stats.done;
    total.dead += stats.dead;
    total.attempts += stats.attempts;
    total.due += stats.due;
    total.oldestDueAgeMs = Math.max(total.oldestDueAgeMs, stats.oldestDueAgeMs);
  }
  return { ...total, topics };
}

function nullableNumber(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}
