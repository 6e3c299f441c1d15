// The dialect-free outbox and job runner, exported from `retrysafe/effects`. The queues live in
// `retrysafe/jobs/sqlite` and `retrysafe/jobs/postgres`.
export * from './backoff.js';
export * from './context.js';
export {
  checkMaxAttempts,
  checkTopic,
  defaultMaxPayloadBytes,
  maxAttemptsLimit,
  maxDedupeKeyLength,
  maxJobIdLength,
  maxTopicLength,
} from './enqueue-input.js';
export * from './errors.js';
export * from './events.js';
export { errorText, maxLastErrorLength } from './execution.js';
export * from './runner.js';
export {
  defaultConcurrency,
  defaultGraceMs,
  defaultLeaseMs,
  defaultMaxAttempts,
  defaultMaxReapBatches,
  defaultPollIntervalMs,
  defaultReapBatchSize,
  defaultReapIntervalMs,
  defaultRetentionMs,
  type JobRunnerOptions,
  maxConcurrency,
} from './runner-options.js';
export * from './types.js';
