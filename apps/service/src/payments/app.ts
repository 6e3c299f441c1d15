// Assembles the payment provider simulator from retrysafe's public parts, like the reference
// service: the Fastify adapter over a SQLite store whose unit of work also holds the charges.
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { defaultLeaseMs, defaultRetentionMs } from 'retrysafe';
import { idempotency, problemServerOptions, useProblemDetails } from 'retrysafe/fastify';
import { ServiceUnavailableError } from 'retrysafe/http';
import { logFingerprint } from '../log-fields.js';
import { registerValidation } from '../validation.js';
import type { PaymentsData } from './data.js';
import type { FaultInjector } from './faults.js';
import { adminRoutes } from './routes/admin.js';
import { chargeRoutes } from './routes/charges.js';
import { refundRoutes } from './routes/refunds.js';

/** The sim has no callers to tell apart: every key lives in this one scope. */
export const paymentsScope = 'payments-sim';
/** Charges and refunds are small: 16 KiB leaves room for a 200-character reference many times over. */
export const paymentsBodyLimitBytes = 16 * 1024;
/** Seconds a caller refused by a closing simulator waits before retrying. */
const closingRetryAfterSeconds = 1;

export interface PaymentsAppOptions {
  data: PaymentsData;
  /** Fault injection; undefined: none, and no `/_faults` route. */
  faults?: FaultInjector | undefined;
  logger?: FastifyServerOptions['logger'];
}

export async function buildPaymentsApp(options: PaymentsAppOptions): Promise<FastifyInstance> {
  const { data, faults } = options;
  const app = Fastify({
    logger: options.logger ?? false,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: paymentsBodyLimitBytes,
    ...problemServerOptions,
    // close() ends idle keep-alive connections at once; busy ones finish their request.
    forceCloseConnections: 'idle',
    return503OnClosing: false,
  });
  useProblemDetails(app);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new ServiceUnavailableError(
      'The payment provider is shutting down; retry later.',
      closingRetryAfterSeconds,
    );
  });
  registerValidation(app);
  // JSON only: a text/plain or form body is 415, never a string the schema calls "not an object".
  app.removeContentTypeParser('text/plain');
  await app.register(idempotency<unknown>, {
    store: data.store,
    leaseMs: defaultLeaseMs,
    retentionMs: defaultRetentionMs,
    scope: () => paymentsScope,
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        idempotencyKeySha256: logFingerprint(request.idempotency?.key),
        idempotencyOutcome: request.idempotency?.outcome,
      },
      'request',
    );
  });

  chargeRoutes(app, data, faults);
  refundRoutes(app, data, faults);
  adminRoutes(app, data, faults);

  const stopReaper = app.idempotencyEngine.startReaper({
    onError: (error) => app.log.warn({ err: error }, 'idempotency reaper failed'),
  });
  app.addHook('onClose', async () => {
    stopReaper();
  });
  return app;
}
