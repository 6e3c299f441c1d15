// `retrysafe/operations`: long-running work as 202 operations — the dialect-free contract, the
// HTTP helpers and the job-side runner. The stores live in `./sqlite.js` and `./postgres.js`.
export * from './errors.js';
export * from './http.js';
export { operationJobId } from './input.js';
export {
  defaultListLimit,
  defaultMaxWaitMs,
  defaultOperationRetentionMs,
  defaultPostgresWaitPollMs,
  defaultSqliteWaitPollMs,
  maxListLimit,
  maxReapLimit,
  minOperationRetentionMs,
  type OperationStoreOptions,
} from './options.js';
export * from './run.js';
export * from './status.js';
export * from './types.js';
