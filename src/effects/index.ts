// `retrysafe/effects`: durable side effects — named steps with derived keys, the outbox and the job runner.
export * from './steps.js';
