// What the runner reports through `onEvent`: each claim, outcome, lease change and failure of
// its own machinery, so a service can log and count them (nothing here changes behaviour).
import type { JobRecord } from './types.js';

/** The job an event is about. */
export interface JobEventJob {
  id: string;
  topic: string;
  attempt: number;
  maxAttempts: number;
}

/** The job as events name it: its attempt is the claim's, its maxAttempts the effective one. */
export function eventJobOf(job: JobRecord, defaultMaxAttempts: number): JobEventJob {
  return {
    id: job.id,
    topic: job.topic,
    attempt: job.attempts,
    maxAttempts: job.maxAttempts ?? defaultMaxAttempts,
  };
}

/** Where the runner's own machinery failed: the database, the listener, or a handler after completing. */
export type JobRunnerActivity =
  | 'claim'
  | 'renew'
  | 'complete'
  | 'fail'
  | 'release'
  | 'reap'
  | 'subscribe'
  | 'handler-after-complete'
  | 'on-event';

export type JobEvent =
  | { type: 'claimed'; job: JobEventJob }
  | { type: 'completed'; job: JobEventJob }
  | { type: 'retry-scheduled'; job: JobEventJob; error: string; delayMs: number; runAtMs: number }
  /** After the last attempt failed, or when its lease lapsed on the last attempt. */
  | { type: 'dead'; job: JobEventJob; error: string }
  | { type: 'lease-renewed'; job: JobEventJob; leaseExpiresAtMs: number }
  /** Another run took the job over: this run's fenced writes were refused. */
  | { type: 'lease-lost'; job: JobEventJob }
  /** Given back at shutdown, its attempt not counted. */
  | { type: 'released'; job: JobEventJob }
  | { type: 'reaped'; count: number }
  /** The wake-up source stopped delivering (PostgreSQL LISTEN dropped): polling only, until restored. */
  | { type: 'listen-lost'; error?: Error }
  | { type: 'listen-restored' }
  | { type: 'error'; during: JobRunnerActivity; error: unknown; job?: JobEventJob };
