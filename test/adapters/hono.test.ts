// Runs the adapter contract against retrysafe/hono on Node through @hono/node-server.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createHonoIdempotency, problemNotFound, problemOnError } from 'retrysafe/hono';
import type { SqliteDatabase } from '../../src/stores/sqlite.js';
import { describeAdapterContract } from './contract.js';

describeAdapterContract('hono', async ({ store, routes, bodyLimitBytes, onError }) => {
  const app = new Hono();
  const retrysafe = createHonoIdempotency<SqliteDatabase>({
    store,
    scope: (c) => c.req.header('x-tenant') ?? 'anonymous',
    body: { limitBytes: bodyLimitBytes },
    onError,
  });
  for (const route of routes) {
    const handler = retrysafe.route(
      { mode: route.mode, accepts: ['application/json', ...(route.accepts ?? [])] },
      (context) => route.handler(context) as never,
    );
    if (route.method === 'GET') app.get(route.path, handler);
    else app.post(route.path, handler);
  }
  app.notFound(problemNotFound(app));
  app.onError(problemOnError({ onError }));

  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
