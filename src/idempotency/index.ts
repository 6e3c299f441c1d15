// `retrysafe`: the framework-free idempotency engine and the types stores and adapters share.
export * from './engine.js';
export * from './errors.js';
export * from './fingerprint.js';
export * from './key.js';
export type * from './store.js';
export * from './response.js';
export { ProblemError, problemTypePrefix, type ProblemBody, type FieldError } from '../http/problem.js';
