// README example: protect your own Fastify route with retrysafe on SQLite.
import Fastify from 'fastify';
import { idempotency, problemErrorHandler } from 'retrysafe/fastify';
import { createSqliteStore, type SqliteDatabase } from 'retrysafe/stores/sqlite';

export async function buildPaymentsApp(databasePath = ':memory:') {
  const store = createSqliteStore({ database: databasePath });
  store.db.exec('CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, cents INTEGER NOT NULL)');

  const app = Fastify();
  app.setErrorHandler(problemErrorHandler); // every error as application/problem+json
  await app.register(idempotency, {
    store,
    scope: (request) => String(request.headers['x-account-id']), // keys never cross accounts
  });

  app.post('/payments', { config: { idempotency: 'required' } }, async (request, reply) => {
    const { cents } = request.body as { cents: number };
    const id = crypto.randomUUID();
    // The INSERT and the stored 201 commit in one transaction: a retry replays, never repays.
    return reply.idempotent((db: SqliteDatabase) => {
      db.prepare('INSERT INTO payments (id, cents) VALUES (?, ?)').run(id, cents);
      return { status: 201, headers: { location: `/payments/${id}` }, body: { id, cents } };
    });
  });
  return { app, store };
}
