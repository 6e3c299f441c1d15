// Public entry of `retrysafe/client`: a fetch-based SDK for Node 20+ and browsers that makes
// writes safe to retry (idempotency keys, deadlines, If-Match) and never throws on HTTP outcomes.

export type {
  CallControl,
  CallOptions,
  Change,
  DeleteOptions,
  GetOptions,
  HeadOptions,
  PatchOptions,
  PostOptions,
  PutOptions,
  Query,
  UpdateOptions,
  WriteOptions,
} from './call-options.js';
export { type Client, createClient } from './client.js';
export { defaultEtagCacheEntries, type EtagCacheOptions } from './etag-cache.js';
export type {
  AfterResponseContext,
  AttemptContext,
  BeforeRequestContext,
  BeforeRetryContext,
  Hooks,
} from './hooks.js';
export { classifyNetworkFailure, type NetworkFailure } from './network.js';
export type { OperationRef } from './operation.js';
export {
  type ClientOptions,
  defaultBaseDelayMs,
  defaultDeadlineMs,
  defaultMaxAttempts,
  defaultMaxConflictRetries,
  defaultMaxDelayMs,
  defaultTimeoutMs,
  type FetchLike,
  type RetryInfo,
  type RetryOptions,
  type ShouldRetryInfo,
} from './options.js';
export { defaultMaxPages, nextLink, type PageOptions } from './pagination.js';
export {
  defaultMaxPollIntervalMs,
  defaultPollDeadlineMs,
  defaultPollIntervalMs,
  type OperationState,
  type OperationStatus,
  operationStatuses,
  type PollOptions,
  type PollResult,
} from './poll.js';
export type { RedirectPolicy } from './redirects.js';
export type { FillOptions, Reservation, ReserveAndFillOptions } from './reservation.js';
export { defaultMaxResponseBytes, type ResponseType } from './response-body.js';
export type {
  ClientError,
  ErrorKind,
  Failure,
  FieldError,
  Problem,
  Result,
  Sent,
  Success,
} from './result.js';
export { errorKinds } from './result.js';
