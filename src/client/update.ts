// `update()`: read, change, write back with If-Match, and on a 412 (someone else wrote first)
// read again and re-apply the change, at most `maxConflictRetries` times, all under one deadline.

import { type Budget, run } from './attempts.js';
import type { Change, UpdateOptions } from './call-options.js';
import { defaultMaxConflictRetries, type NormalizedOptions } from './options.js';
import type { Call } from './request.js';
import { describeResource, type Result } from './result.js';

export async function update<TData>(
  config: NormalizedOptions,
  path: string,
  change: Change<TData>,
  options: UpdateOptions<TData>,
  budget: Budget,
): Promise<Result<TData>> {
  if (typeof change !== 'function') throw new TypeError('update: change must be a function');
  const maxConflictRetries = options.maxConflictRetries ?? defaultMaxConflictRetries;
  if (!Number.isInteger(maxConflictRetries) || maxConflictRetries < 0) {
    throw new TypeError('update: maxConflictRetries must be a whole number of at least 0');
  }
  const { maxConflictRetries: _, schema, form, ...readOptions } = options;
  let attempts = 0;
  // Bounded: one read-change-write per round, at most 1 + maxConflictRetries rounds.
  for (let round = 0; ; round++) {
    const read = await run<TData>(
      config,
      { method: 'GET', path, body: undefined, options: readOptions },
      budget,
    );
    attempts += read.ok ? read.attempts : read.error.attempts;
    if (!read.ok) return withAttempts(read, attempts);
    if (read.etag === undefined) {
      return {
        ok: false,
        error: {
          kind: 'bad_response',
          status: read.status,
          message: `${describeResource(path)} has no ETag, so it cannot be changed safely; nothing was written.`,
          sent: 'no',
          retryable: false,
          attempts,
        },
      };
    }
    const draft = structuredClone(read.data);
    const returned = await change(draft);
    // A mutating callback returns nothing (void, undefined at run time): then the draft is the new body.
    const body = returned === undefined ? draft : (returned as TData);
    const writeOptions: Call['options'] = { ...readOptions, ifMatch: read.etag };
    if (schema !== undefined) writeOptions.schema = schema;
    if (form !== undefined) writeOptions.form = form;
    const written = await run<TData>(config, { method: 'PUT', path, body, options: writeOptions }, budget);
    attempts += written.ok ? written.attempts : written.error.attempts;
    if (written.ok || written.error.kind !== 'precondition_failed') return withAttempts(written, attempts);
    if (round >= maxConflictRetries) {
      const error = written.error;
      return withAttempts(
        {
          ok: false,
          error: {
            ...error,
            message: `${describeResource(path)} was changed by someone else — reload and try again (it changed ${round + 1} times while we tried)`,
          },
        },
        attempts,
      );
    }
  }
}

function withAttempts<TData>(result: Result<TData>, attempts: number): Result<TData> {
  if (result.ok) return { ...result, attempts };
  return { ok: false, error: { ...result.error, attempts } };
}
