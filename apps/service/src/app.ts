// Assembles the reference service from retrysafe's public parts: the Fastify adapter, the
// HTTP helpers and a store. Users copy this file as the template for their own service.
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { defaultLeaseMs, defaultRetentionMs, type IdempotencyStore } from 'retrysafe';
import { createJobRunner, type JobHandler, type JobRunnerOptions } from 'retrysafe/effects';
import { formBodies, idempotency, problemServerOptions, useProblemDetails } from 'retrysafe/fastify';
import { ServiceUnavailableError } from 'retrysafe/http';
import type { EventRelay } from 'retrysafe/relays/nats';
import { principalOf, registerAuth } from './auth.js';
import { changeCompleterTopic } from './checkout/adjust.js';
import { changeCompleterHandler } from './checkout/adjust-completer.js';
import {
  type CheckoutDeps,
  completerTopic,
  defaultCompleterDelayMs,
  orderPaidTopic,
} from './checkout/checkout.js';
import { completerHandler } from './checkout/completer.js';
import { defaultHttpLimits, defaultReadyTimeoutMs, type HttpLimits } from './config.js';
import type { ServiceData } from './data/types.js';
import { importJobHandler } from './imports/job.js';
import { startOperationsReaper } from './imports/reaper.js';
import { importBatchPauseFromEnv, importJobTopic } from './imports/settings.js';
import { logFingerprint, serviceLoggerOptions } from './log-fields.js';
import { ServiceMetrics } from './metrics.js';
import type { PaymentsClient } from './payments/client.js';
import { operationResourceRoutes } from './routes/operation-resources.js';
import { operationsRoutes, type ReadinessCheck } from './routes/operations.js';
import { orderImportRoutes } from './routes/orders/imports.js';
import { orderRoutes } from './routes/orders/index.js';
import { userRoutes } from './routes/users/index.js';
import { registerTestHooks } from './test-hooks.js';
import { registerValidation } from './validation.js';

/** Every process runs the job runner (none is special); it stops before the data closes. */
function startJobRunner<Tx>(
  app: FastifyInstance,
  checkout: CheckoutDeps<Tx>,
  options: ServiceOptions<Tx>,
  metrics: ServiceMetrics,
): void {
  const relays = options.relays ?? [];
  const { run = true, graceMs = defaultJobGraceMs, ...settings } = options.jobs ?? {};
  const handlers: Record<string, JobHandler<Tx>> = {
    [completerTopic]: completerHandler(checkout),
    [changeCompleterTopic]: changeCompleterHandler(checkout),
    [importJobTopic]: importJobHandler({
      data: checkout.data,
      log: app.log,
      batchPauseMs: importBatchPauseFromEnv(options.testHooks === true),
    }),
  };
  // Without a broker the events wait in the outbox (unclaimed) until a relay is configured.
  if (relays.length > 0) handlers[orderPaidTopic] = relayHandler(relays);
  const runner = createJobRunner<Tx>({
    queue: checkout.data.jobs,
    handlers,
    ...settings,
    onEvent: (event) => {
      if (event.type === 'retry-scheduled' || event.type === 'dead')
        app.log.warn({ job: event.job.id, topic: event.job.topic, error: event.error }, `job ${event.type}`);
    },
  });
  metrics.observeJobs(() => runner.stats(), [orderPaidTopic]);
  if (!run) return;
  app.addHook('onReady', async () => {
    await runner.start();
  });
  app.addHook('preClose', async () => {
    await runner.stop({ graceMs });
  });
}

/** Publishes an event to every configured broker; a throw retries it (brokers and consumers dedupe by its id). */
function relayHandler<Tx>(relays: EventRelay[]): JobHandler<Tx> {
  return async ({ job }) => {
    for (const relay of relays)
      await relay.publish({
        id: job.id,
        topic: job.topic,
        payload: job.payload,
        createdAtMs: job.createdAtMs,
      });
  };
}

const defaultJobGraceMs = 5_000;

export interface ServiceOptions<Tx> {
  data: ServiceData<Tx>;
  /** Idempotency records elsewhere than the business data (e.g. Redis). Default: `data.store`. */
  idempotencyStore?: IdempotencyStore<Tx>;
  leaseMs?: number;
  retentionMs?: number;
  /** Most live idempotency records per tenant (429 beyond). Default: none (the engine's). */
  maxRecordsPerTenant?: number;
  /** Largest answer body kept for replay. Default: the engine's (1 MiB). */
  maxStoredResponseBytes?: number;
  logger?: FastifyServerOptions['logger'];
  /** Enables the x-test-delay-* headers. Never in production. */
  testHooks?: boolean;
  /** Browser origins allowed to call the service; `['*']` for any. Default: none. */
  corsOrigins?: string[];
  /** Largest request body (JSON or form) in bytes; a larger one is 413. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Timeouts and the connection cap of the HTTP server. Default `defaultHttpLimits`. */
  http?: HttpLimits;
  /** Stores /readyz checks besides the SQL database (e.g. Redis). */
  readinessChecks?: ReadinessCheck[];
  /** How long /readyz waits for each check. Default 1 s. */
  readyTimeoutMs?: number;
  /** The payment provider the checkout charges. */
  payments: PaymentsClient;
  /** How long a checkout may stay unfinished before the completer job finishes it. Default 60 s. */
  completerDelayMs?: number;
  /** Where `order.paid` events are published (NATS, RabbitMQ). None: they wait in the outbox. */
  relays?: EventRelay[];
  /** The job runner's settings; `run: false` starts none in this process. */
  jobs?: Partial<
    Pick<
      JobRunnerOptions<Tx>,
      'concurrency' | 'leaseMs' | 'pollIntervalMs' | 'backoff' | 'maxAttempts' | 'retentionMs'
    >
  > & {
    run?: boolean;
    /** How long running jobs get to finish at shutdown. Default 5 s. */
    graceMs?: number;
  };
}

/**
 * How often Node looks for requests past their header or request timeout (its default, 30 s,
 * would let a body stall that much longer than HTTP_REQUEST_TIMEOUT_MS says). One pass over
 * the open connections per second.
 */
export const connectionsCheckingIntervalMs = 1_000;

/** Seconds a caller refused by a draining instance waits before retrying (elsewhere). */
const drainingRetryAfterSeconds = 1;

/**
 * 1 MiB: a user is under 3 KiB and a 100-item order under 20 KiB, so this leaves room without
 * letting one request hold much memory or CPU. Larger bodies get 413 problem+json, whether the
 * Content-Length says so up front or a chunked body grows past it.
 */
export const defaultBodyLimitBytes = 1024 * 1024;

/**
 * Longest path parameter the router matches, in characters. Ids are UUIDs (36) and the schemas
 * allow 64 (400 above that); past this the router stops early with 414 problem+json.
 */
export const maxPathParamLength = 100;

/** Headers a browser script must be able to read for safe retries, If-Match and 202 operations. */
const exposedHeaders = [
  'Location',
  'ETag',
  'Idempotent-Replayed',
  'Retry-After',
  'Link',
  'Operation-Location',
  'Preference-Applied',
];

export async function buildServiceApp<Tx>(options: ServiceOptions<Tx>): Promise<FastifyInstance> {
  const { data } = options;
  const http = options.http ?? defaultHttpLimits;
  const app = Fastify({
    logger: options.logger ?? serviceLoggerOptions('info'),
    // One line per request comes from our onResponse hook, with the fields operators need.
    logController: new LogController({ disableRequestLogging: true }),
    // Header values never reach the logs, but request ids do: they tie log lines together.
    requestIdHeader: 'x-request-id',
    bodyLimit: options.bodyLimitBytes ?? defaultBodyLimitBytes,
    routerOptions: { maxParamLength: maxPathParamLength },
    // Requests refused before any route runs answer problem+json too: a URL that does not
    // decode or a too-long path parameter (router), and what Node's HTTP parser rejects.
    ...problemServerOptions,
    // Bounds a client cannot hold past (README: Operations): a body that never finishes is
    // cut at the request timeout with a 408 problem, and an idle keep-alive connection closes.
    // No socket inactivity timeout: a handler may legitimately work longer than any idle gap.
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    connectionTimeout: 0,
    http: {
      ...problemServerOptions.http,
      headersTimeout: http.headersTimeoutMs,
      connectionsCheckingInterval: connectionsCheckingIntervalMs,
    },
    // close() ends idle keep-alive connections at once; busy ones finish their request (with
    // Connection: close), and the server's shutdown grace period cuts whatever is left.
    forceCloseConnections: 'idle',
    // Our own hook answers requests that arrive while draining, as a problem with Retry-After.
    return503OnClosing: false,
  });
  // Connections past the cap are refused at accept, before they can use up file descriptors.
  app.server.maxConnections = http.maxConnections;
  const metrics = new ServiceMetrics();

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'retrysafe reference service',
        version: '0.1.0',
        description: 'Users and orders whose writes are safe to retry. Errors are application/problem+json.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
  });
  const corsOrigins = options.corsOrigins ?? [];
  if (corsOrigins.length > 0) {
    await app.register(cors, {
      origin: corsOrigins.includes('*') ? '*' : corsOrigins,
      methods: ['GET', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: [
        'Authorization',
        'Content-Type',
        'Idempotency-Key',
        'If-Match',
        'If-None-Match',
        'Prefer',
        'X-Retry-Count',
      ],
      exposedHeaders,
      maxAge: 600,
    });
  }
  useProblemDetails(app);
  // While draining after SIGTERM, a request on a busy keep-alive connection is refused as a
  // retryable 503 problem, before authentication and before anything runs.
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!draining) return;
    reply.header('connection', 'close');
    throw new ServiceUnavailableError(
      'This instance is shutting down and takes no new requests; retry (another instance will answer).',
      drainingRetryAfterSeconds,
    );
  });
  registerValidation(app);
  // JSON and HTML forms only: Fastify's default text/plain parser let a text body through to
  // the schema as a string (422 "must be object") where a media type it does not take is 415.
  app.removeContentTypeParser('text/plain');
  await app.register(formBodies);
  registerAuth(app, data.apiKeys);

  const store = options.idempotencyStore ?? data.store;
  await app.register(idempotency<Tx>, {
    store,
    leaseMs: options.leaseMs ?? defaultLeaseMs,
    retentionMs: options.retentionMs ?? defaultRetentionMs,
    ...(options.maxRecordsPerTenant === undefined ? {} : { maxRecordsPerScope: options.maxRecordsPerTenant }),
    ...(options.maxStoredResponseBytes === undefined
      ? {}
      : { maxStoredResponseBytes: options.maxStoredResponseBytes }),
    // A store without transactions (Redis) runs the writes in the SQL database's transaction.
    ...(store.transaction ? {} : { transaction: data.transaction }),
    scope: (request) => principalOf(request).tenant,
    onOutcome: (outcome) => metrics.idempotency.inc({ outcome }),
  });
  const hooks = registerTestHooks(app, options.testHooks === true);

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const retryCount = Number(request.headers['x-retry-count'] ?? 0);
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    if (retryCount > 0) metrics.retried.inc({ method: request.method, route });
    request.log.info(
      {
        method: request.method,
        route,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
        tenant: request.principal?.tenant,
        idempotencyKeySha256: logFingerprint(request.idempotency?.key),
        idempotencyOutcome: request.idempotency?.outcome,
        retryCount: Number.isFinite(retryCount) ? retryCount : undefined,
      },
      'request',
    );
  });

  operationsRoutes(app, metrics, {
    checks: [{ name: 'database', check: () => data.ping() }, ...(options.readinessChecks ?? [])],
    timeoutMs: options.readyTimeoutMs ?? defaultReadyTimeoutMs,
  });
  userRoutes(app, data, hooks);
  const checkout: CheckoutDeps<Tx> = {
    data,
    payments: options.payments,
    completerDelayMs: options.completerDelayMs ?? defaultCompleterDelayMs,
  };
  // Awaited: the import routes live in a context of their own (their NDJSON parser).
  await orderImportRoutes(app, data, hooks);
  orderRoutes(app, checkout, hooks);
  operationResourceRoutes(app, data);
  startJobRunner(app, checkout, options, metrics);
  startOperationsReaper(app, data.operations);

  const stopReaper = app.idempotencyEngine.startReaper({
    onError: (error) => app.log.warn({ err: error }, 'idempotency reaper failed'),
    onReap: (run) => metrics.recordReap(run),
  });
  app.addHook('onClose', async () => {
    stopReaper();
  });
  return app;
}
