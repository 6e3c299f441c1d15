// One benchmark server per process: `node bench/server.js <variant>`, forked by bench/run.js.
// Every variant serves the same POST /orders route (same body schema, same order, same 201);
// only the idempotency wiring and where the order is written differ. Reports its port over IPC.
import { Idempotency, IdempotencyError } from '@node-idempotency/core';
import { RedisStorageAdapter } from '@node-idempotency/storage-adapter-redis';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { idempotency } from 'retrysafe/fastify';
import { createRedisStore } from 'retrysafe/stores/redis';
import { openPostgresServiceData } from '../apps/service/dist/data/postgres.js';
import { openSqliteServiceData } from '../apps/service/dist/data/sqlite.js';
import { buildOrder, orderPath, serializeOrder } from '../apps/service/dist/domain/orders.js';
import { orderInputSchema } from '../apps/service/dist/schemas.js';
import { variants } from './variants.js';

const tenant = 'bench';
const json = 'application/json; charset=utf-8';

/** The route's own work, identical in every variant: build the order and its 201. */
function orderResponse(body) {
  const order = buildOrder(tenant, body);
  const response = {
    status: 201,
    headers: { location: orderPath(order.id), etag: order.etag, 'content-type': json },
    body: serializeOrder(order),
  };
  return { order, response };
}

function send(reply, response) {
  return reply.code(response.status).headers(response.headers).send(response.body);
}

async function start(variant, env) {
  const app = Fastify({ logger: false });
  const closers = [() => app.close()];
  const routeOptions = { schema: { body: orderInputSchema } };
  let handler;

  if (variant === 'a0') {
    handler = async (request, reply) => send(reply, orderResponse(request.body).response);
  } else if (variant === 'a-sqlite' || variant === 'a-postgres') {
    const data =
      variant === 'a-sqlite'
        ? openSqliteServiceData(env.SQLITE_PATH)
        : await openPostgresServiceData(env.DATABASE_URL);
    closers.push(() => data.close());
    handler = async (request, reply) => {
      const { order, response } = orderResponse(request.body);
      await data.transaction((tx) => data.orders.insertOnce(tx, order));
      return send(reply, response);
    };
  } else if (variant === 'b' || variant === 'c' || variant === 'd') {
    const data =
      variant === 'c'
        ? await openPostgresServiceData(env.DATABASE_URL)
        : openSqliteServiceData(env.SQLITE_PATH);
    closers.push(() => data.close());
    if (variant === 'd') {
      let redis;
      if (env.BENCH_D_CLIENT === 'ioredis') {
        redis = new Redis(env.REDIS_URL, { lazyConnect: true });
        await redis.connect();
      } else {
        redis = createClient({ url: env.REDIS_URL });
        await redis.connect();
      }
      closers.push(() => redis.quit());
      const store = createRedisStore({ client: redis, prefix: env.REDIS_PREFIX });
      await app.register(idempotency, { store, scope: () => tenant, transaction: data.transaction });
    } else {
      await app.register(idempotency, { store: data.store, scope: () => tenant });
    }
    routeOptions.config = { idempotency: 'required' };
    handler = async (request, reply) => {
      const { order, response } = orderResponse(request.body);
      return reply.idempotent(async (tx) => {
        await data.orders.insertOnce(tx, order);
        return response;
      });
    };
  } else if (variant === 'e') {
    const data = openSqliteServiceData(env.SQLITE_PATH);
    closers.push(() => data.close());
    const storage = new RedisStorageAdapter({ url: env.REDIS_URL });
    await storage.connect();
    closers.push(() => storage.disconnect());
    wireNodeIdempotency(app, storage, env.REDIS_PREFIX);
    handler = async (request, reply) => {
      const { order, response } = orderResponse(request.body);
      await data.transaction((tx) => data.orders.insertOnce(tx, order));
      return send(reply, response);
    };
  } else {
    throw new Error(`unknown variant ${variant}; one of ${Object.keys(variants).join(', ')}`);
  }

  app.post('/orders', routeOptions, handler);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    port: app.server.address().port,
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}

/**
 * @node-idempotency/core wired the way its own Fastify plugin does: `onRequest` before the
 * handler (claim with SET NX, or the cached answer), `onResponse` in onSend (store the answer
 * with SET) before the response leaves — the same point at which retrysafe settles.
 */
function wireNodeIdempotency(app, storage, prefix) {
  const idem = new Idempotency(storage, { cacheKeyPrefix: prefix, enforceIdempotency: true });
  const errorStatus = {
    REQUEST_IN_PROGRESS: 409,
    IDEMPOTENCY_FINGERPRINT_MISSMATCH: 422,
    IDEMPOTENCY_KEY_LEN_EXEEDED: 400,
  };
  app.decorateRequest('nodeIdempotency', null);
  app.addHook('preHandler', async (request, reply) => {
    const params = {
      method: request.method,
      path: request.url,
      headers: request.headers,
      body: request.body,
    };
    let cached;
    try {
      cached = await idem.onRequest(params);
    } catch (error) {
      if (!(error instanceof IdempotencyError)) throw error;
      return reply.code(errorStatus[error.code] ?? 400).send({ detail: error.message });
    }
    if (cached) {
      const { status, headers } = cached.additional;
      return reply.code(status).headers(headers).header('idempotent-replayed', 'true').send(cached.body);
    }
    request.nodeIdempotency = params;
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const params = request.nodeIdempotency;
    if (params === null || reply.statusCode >= 500) return payload;
    const headers = {};
    for (const name of ['content-type', 'location', 'etag']) {
      const value = reply.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    await idem.onResponse(params, { body: payload, additional: { status: reply.statusCode, headers } });
    return payload;
  });
}

const variant = process.argv[2];
if (variant !== undefined) {
  const server = await start(variant, process.env);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    process.exit(0);
  };
  // Stop when told to, and never outlive the runner.
  process.on('message', (message) => {
    if (message === 'stop') stop();
    // CPU time this process has used so far (µs): the runner takes it before and after a slice.
    if (message === 'cpu') process.send?.({ cpuUs: process.cpuUsage().user + process.cpuUsage().system });
  });
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  process.send?.({ port: server.port });
}
