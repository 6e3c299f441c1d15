// `retrysafe/fastify`: a thin Fastify shell over the engine. It parses the key, asks the engine
// to begin, replays or refuses, and settles the execution; all decisions live in the engine.
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RouteOptions,
} from 'fastify';
import fp from 'fastify-plugin';
import {
  createIdempotencyEngine,
  type Execution,
  type IdempotencyEngine,
  type IdempotencyEngineOptions,
  type IdempotencyOutcome,
} from '../idempotency/engine.js';
import { IdempotencyKeyMissingError } from '../idempotency/errors.js';
import { parseIdempotencyKey } from '../idempotency/key.js';
import { type ResponseDraft, toStoredResponse } from '../idempotency/response.js';
import type { StoredResponse } from '../idempotency/store.js';

export { type FormBodiesOptions, formBodies } from './fastify-form.js';
export {
  maxReportedFieldErrors,
  problemCheckExpectationHandler,
  problemClientErrorHandler,
  problemConnectHandler,
  problemErrorHandler,
  problemNotFoundHandler,
  problemServerOptions,
  sendProblem,
  useProblemDetails,
} from './fastify-problem.js';

export const defaultIdempotencyHeader = 'idempotency-key';

/** Headers kept with a response produced outside `reply.idempotent` and sent again on replay. */
export const replayedHeaderNames = [
  'content-type',
  'location',
  'etag',
  'content-location',
  'last-modified',
  'link',
  'operation-location',
  'retry-after',
] as const;

/** `required`: a request without a key is 400. `optional`: keyed requests are protected, others run as usual. */
export type IdempotencyMode = 'required' | 'optional';

export interface IdempotencyState {
  key: string | undefined;
  outcome: IdempotencyOutcome | undefined;
  recordId: string | undefined;
  execution: Execution<unknown> | undefined;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    idempotency?: IdempotencyMode;
  }
  interface FastifyRequest {
    /** Set on routes with `config.idempotency`; null elsewhere. */
    idempotency: IdempotencyState | null;
  }
  interface FastifyReply {
    /**
     * Runs `work` (your writes) and sends its answer. With a key, the writes and the stored
     * response commit in one transaction of the store; a throw or a 5xx rolls both back.
     */
    idempotent<Tx>(work: (tx: Tx) => ResponseDraft | Promise<ResponseDraft>): Promise<FastifyReply>;
  }
  interface FastifyInstance {
    idempotencyEngine: IdempotencyEngine<unknown>;
  }
}

export type FastifyIdempotencyOptions<Tx> = (
  | IdempotencyEngineOptions<Tx>
  | { engine: IdempotencyEngine<Tx> }
) & {
  /** Who is calling (tenant, account, principal). Keys never replay across scopes. */
  scope: (request: FastifyRequest) => string;
  /** Header to read the key from. Default `Idempotency-Key`. */
  headerName?: string;
  /** Called once per keyed request with what the engine decided (for metrics). */
  onOutcome?: (outcome: IdempotencyOutcome, request: FastifyRequest) => void;
};

const plugin: FastifyPluginAsync<FastifyIdempotencyOptions<unknown>> = async (fastify, options) => {
  const engine = 'engine' in options ? options.engine : createIdempotencyEngine(options);
  const headerName = (options.headerName ?? defaultIdempotencyHeader).toLowerCase();
  const { scope, onOutcome } = options;

  fastify.decorate('idempotencyEngine', engine);
  fastify.decorateRequest('idempotency', null);
  fastify.decorateReply('idempotent', async function idempotent(this: FastifyReply, work) {
    const execution = this.request.idempotency?.execution;
    const draftToStored = async (tx: unknown) => toStoredResponse(await work(tx as never));
    const response = execution
      ? await execution.commit(draftToStored)
      : await runWithoutKey(engine, draftToStored);
    return sendStored(this, response);
  } as FastifyReply['idempotent']);

  fastify.addHook('onRoute', (route: RouteOptions) => {
    const mode = route.config?.idempotency;
    if (mode === undefined) return;
    route.preValidation = [...asArray(route.preValidation), readKey(mode, headerName)];
    route.preHandler = [...asArray(route.preHandler), begin];
  });

  async function begin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const state = request.idempotency;
    if (state?.key === undefined) return;
    const result = await engine.begin({
      scope: scope(request),
      method: request.method,
      route: request.routeOptions.url ?? request.url,
      path: request.url.split('?')[0] ?? request.url,
      key: state.key,
      body: request.body,
    });
    state.outcome = result.outcome;
    onOutcome?.(result.outcome, request);
    switch (result.outcome) {
      case 'executed':
        state.execution = result.execution;
        state.recordId = result.execution.recordId;
        return;
      case 'replayed':
        state.recordId = result.recordId;
        reply.header('idempotent-replayed', 'true');
        await sendStored(reply, result.response);
        return;
      default:
        throw result.error;
    }
  }

  // Settles executions whose handler answered without `reply.idempotent` (e.g. a thrown 4xx),
  // before the response leaves, so a retry never races an unsaved result. A callback hook:
  // the common case (already settled, or no key) passes the payload on without a promise.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const execution = request.idempotency?.execution;
    if (!execution || execution.settled) {
      done(null, payload);
      return;
    }
    settleOnSend(execution, reply, payload).then(
      () => done(null, payload),
      (error: Error) => done(error),
    );
  });

  // Safety net: whatever happened, no claim outlives its request.
  fastify.addHook('onResponse', (request, _reply, done) => {
    const execution = request.idempotency?.execution;
    if (execution && !execution.settled) execution.release().then(() => done(), done);
    else done();
  });
};

async function settleOnSend(
  execution: Execution<unknown>,
  reply: FastifyReply,
  payload: unknown,
): Promise<void> {
  if (reply.statusCode >= 500 || !isStorable(payload)) {
    await execution.release();
    return;
  }
  await execution.complete({
    status: reply.statusCode,
    headers: pickReplayHeaders(reply),
    body: payload === null || payload === undefined ? new Uint8Array(0) : Buffer.from(payload),
  });
}

function readKey(mode: IdempotencyMode, headerName: string) {
  const displayName = headerName.replace(/(^|-)\w/g, (s) => s.toUpperCase());
  // A callback hook: nothing here waits, so no promise per request.
  return function readIdempotencyKey(
    request: FastifyRequest,
    _reply: FastifyReply,
    done: HookHandlerDoneFunction,
  ): void {
    let key: string | undefined;
    try {
      // Node joins a repeated header into one comma-separated value; its distinct copies let
      // the parser say "sent more than once". (Fastify's inject has no headersDistinct.)
      const raw = request.raw.headersDistinct?.[headerName] ?? request.headers[headerName];
      key = parseIdempotencyKey(raw, displayName);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (key === undefined && mode === 'required') {
      done(new IdempotencyKeyMissingError(displayName));
      return;
    }
    request.idempotency = { key, outcome: undefined, recordId: undefined, execution: undefined };
    done();
  };
}

async function runWithoutKey(
  engine: IdempotencyEngine<unknown>,
  work: (tx: unknown) => Promise<StoredResponse>,
): Promise<StoredResponse> {
  const run = engine.store.transaction?.bind(engine.store) ?? engine.options.transaction;
  if (run === undefined) return work(undefined);
  // A 5xx from the handler must not leave half its writes behind, keyed or not.
  let failed: StoredResponse | undefined;
  try {
    return await run(async (tx) => {
      const response = await work(tx);
      if (response.status >= 500) {
        failed = response;
        throw new Error('rollback');
      }
      return response;
    });
  } catch (error) {
    if (failed) return failed;
    throw error;
  }
}

function sendStored(reply: FastifyReply, response: StoredResponse): FastifyReply {
  reply.code(response.status);
  for (const [name, value] of Object.entries(response.headers)) reply.header(name, value);
  if (response.body.byteLength === 0) return reply.send();
  return reply.send(Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength));
}

function pickReplayHeaders(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of replayedHeaderNames) {
    const value = reply.getHeader(name);
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}

function isStorable(payload: unknown): payload is string | Buffer | null | undefined {
  return payload === null || payload === undefined || typeof payload === 'string' || Buffer.isBuffer(payload);
}

function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Register before the routes it protects; mark a route with `config: { idempotency: 'required' }`. */
/**
 * The plugin. Generic in the store's transaction type, so `app.register(idempotency<Tx>, …)`
 * types `reply.idempotent`'s `tx`; plain `app.register(idempotency, …)` works too.
 */
export interface IdempotencyPlugin {
  <Tx>(instance: FastifyInstance, options: FastifyIdempotencyOptions<Tx>): Promise<void>;
  // Last, so `app.register(idempotency, …)` infers from it and types `scope`'s request.
  (instance: FastifyInstance, options: FastifyIdempotencyOptions<unknown>): Promise<void>;
}

export const idempotency = fp(plugin, {
  fastify: '5.x',
  name: 'retrysafe-idempotency',
}) as unknown as IdempotencyPlugin;

export default idempotency;
