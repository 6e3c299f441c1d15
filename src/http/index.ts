// `retrysafe/http`: framework-free HTTP helpers — problem details, ETags, preconditions.
export * from './etag.js';
export * from './negotiation.js';
export * from './preconditions.js';
export * from './problem.js';
