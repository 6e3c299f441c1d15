// Runs the adapter contract against retrysafe/fastify, listening on loopback.
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { idempotency, problemErrorHandler } from '../../src/adapters/fastify.js';
import { problemMethodNotAllowedHandler } from '../../src/adapters/fastify-problem.js';
import type { ResponseDraft } from '../../src/idempotency/response.js';
import type { SqliteDatabase } from '../../src/stores/sqlite.js';
import { describeAdapterContract } from './contract.js';

const encoder = new TextEncoder();

/** A logger that hands every logged error to the contract and drops the rest. */
function errorLogger(onError: (error: unknown) => void): FastifyBaseLogger {
  const ignore = () => {};
  const logger = {
    level: 'error',
    fatal: ignore,
    warn: ignore,
    info: ignore,
    debug: ignore,
    trace: ignore,
    silent: ignore,
    error: (record: { err?: unknown }) => onError(record?.err ?? record),
    child: () => logger,
  };
  return logger as unknown as FastifyBaseLogger;
}

describeAdapterContract('fastify', async ({ store, routes, bodyLimitBytes, onError }) => {
  const app = Fastify({ loggerInstance: errorLogger(onError), bodyLimit: bodyLimitBytes });
  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler(problemMethodNotAllowedHandler(app));
  // Fastify parses JSON and text/plain itself; binary bodies need a parser registered.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  await app.register(idempotency<SqliteDatabase>, {
    store,
    scope: (request) => String(request.headers['x-tenant'] ?? 'anonymous'),
  });
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.path,
      config: { idempotency: route.mode },
      handler: async (request, reply) => {
        let committed = false;
        const body = request.body;
        const result = await route.handler({
          body,
          rawBody:
            body instanceof Uint8Array
              ? body
              : encoder.encode(typeof body === 'string' ? body : JSON.stringify(body)),
          key: request.idempotency?.key,
          idFor: (name) => request.idempotency!.idFor(name),
          commit: async (work) => {
            await reply.idempotent(work);
            committed = true;
          },
        });
        if (committed) return reply;
        const draft = result as ResponseDraft;
        reply.code(draft.status);
        for (const [name, value] of Object.entries(draft.headers ?? {})) reply.header(name, value);
        return draft.body;
      },
    });
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
});
