// The benchmark's variants, by name: shared by the runner (bench/run.js) and the servers (bench/server.js).
export const variants = {
  a0: 'bare route, no writes',
  'a-sqlite': 'bare route + order INSERT (SQLite)',
  'a-postgres': 'bare route + order INSERT (PostgreSQL)',
  b: 'retrysafe, SQLite',
  c: 'retrysafe, PostgreSQL',
  d: 'retrysafe, Redis records + SQLite orders',
  e: '@node-idempotency/core, Redis + SQLite orders',
};
