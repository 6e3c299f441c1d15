// `retrysafe/effects`: durable side effects — named steps with derived keys, the outbox and the job runner.

export * from './jobs/index.js';
export * from './steps.js';
