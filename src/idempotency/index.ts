// `retrysafe`: the framework-free idempotency engine and the types stores and adapters share.

export { type FieldError, type ProblemBody, ProblemError, problemTypePrefix } from '../http/problem.js';
export * from './engine.js';
export * from './errors.js';
export * from './fingerprint.js';
export * from './key.js';
export * from './lifecycle.js';
export * from './response.js';
export type * from './store.js';
export { takeoverRecordId } from './store.js';
