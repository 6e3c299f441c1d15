// Runs the adapter contract against retrysafe/express on Express 5 over real HTTP.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  createExpressIdempotency,
  methodNotAllowed,
  problemErrorHandler,
  problemNotFound,
} from 'retrysafe/express';
import type { SqliteDatabase } from '../../src/stores/sqlite.js';
import { describeAdapterContract } from './contract.js';

describeAdapterContract('express', async ({ store, routes, bodyLimitBytes, onError }) => {
  const app = express();
  const retrysafe = createExpressIdempotency<SqliteDatabase>({
    store,
    scope: (req) => req.get('x-tenant') ?? 'anonymous',
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
  app.use(methodNotAllowed(app), problemNotFound(), problemErrorHandler({ onError }));

  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
