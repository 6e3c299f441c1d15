// `retrysafe/fastify`: Fastify over the request lifecycle. It only translates: a marked route's
// request becomes a neutral request, its handler runs inside `lifecycle.handle`, and the
// neutral answer is written back. Every decision (key, replay, settle, problems) is the
// lifecycle's; nothing is stored after it was sent and no reply method is patched.
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RouteOptions,
} from 'fastify';
import type { IdempotencyEngine } from '../idempotency/engine.js';
import {
  createLifecycle,
  type IdempotencyMode,
  type LifecycleOptions,
  type LifecycleOutcome,
  type RequestContext,
  type RequestLifecycle,
  type StepCall,
} from '../idempotency/lifecycle.js';
import { type ResponseDraft, toStoredResponse } from '../idempotency/response.js';
import type { StoredResponse } from '../idempotency/store.js';
import { asFastifyPlugin } from './fastify-plugin-meta.js';
import { keepRawJsonBodies, rawBodyOf } from './fastify-raw-body.js';

export {
  defaultIdempotencyHeader,
  type IdempotencyMode,
  replayedHeaderNames,
  type StepCall,
} from '../idempotency/lifecycle.js';
export { type FormBodiesOptions, formBodies } from './fastify-form.js';
export {
  maxReportedFieldErrors,
  problemCheckExpectationHandler,
  problemClientErrorHandler,
  problemConnectHandler,
  problemErrorHandler,
  problemMethodNotAllowedHandler,
  problemNotFoundHandler,
  problemServerOptions,
  sendProblem,
  useProblemDetails,
} from './fastify-problem.js';

export interface IdempotencyState {
  key: string | undefined;
  /** What the lifecycle did; set once the handler's answer is known. */
  outcome: LifecycleOutcome | undefined;
  recordId: string | undefined;
  /**
   * A stable id for the resource `name` this request creates (see `RequestContext.idFor`).
   * Available inside the handler.
   */
  idFor(name: string): string;
  /**
   * A named step: `work` runs in one transaction with its checkpoint, and a retry with the same
   * key skips it and gets its saved result (see `RequestContext.step`). Type the transaction
   * through `work`'s parameter: `step('order', (db: Database) => …)`. Inside the handler.
   */
  step<T, Tx = unknown>(name: string, work: (tx: Tx) => T | Promise<T>): Promise<T>;
  /**
   * An external call with the stable key `<recordId>:<name>`, outside any transaction, its
   * result checkpointed (see `RequestContext.call`). Inside the handler.
   */
  call<T>(name: string, work: (call: StepCall) => T | Promise<T>): Promise<T>;
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
     * Runs `work` (your writes) in one transaction and answers with what it returns. With a
     * key, the writes and the stored answer commit together; a throw or a 5xx rolls both back.
     */
    idempotent<Tx>(work: (tx: Tx) => ResponseDraft | Promise<ResponseDraft>): Promise<FastifyReply>;
  }
  interface FastifyInstance {
    idempotencyEngine: IdempotencyEngine<unknown>;
    idempotencyLifecycle: RequestLifecycle<unknown>;
  }
}

export type FastifyIdempotencyOptions<Tx> = LifecycleOptions<Tx> & {
  /** Who is calling (tenant, account, principal). Keys never replay across scopes. */
  scope: (request: FastifyRequest) => string;
  /** Called once per request on a marked route with what the lifecycle did (for metrics). */
  onOutcome?: (outcome: LifecycleOutcome, request: FastifyRequest) => void;
};

/** Per request: the handler's context and what `reply.idempotent` committed. */
interface RouteRun {
  context: RequestContext<unknown> | undefined;
  committed: StoredResponse | undefined;
  /**
   * `reply.idempotent` sent the answer. `reply.sent` is not enough: while an async onSend hook
   * still runs it is false, and a client hanging up then resolves the reply early, so the
   * handler would send the answer a second time.
   */
  sent: boolean;
}

const runs = new WeakMap<FastifyRequest, RouteRun>();

async function plugin(fastify: FastifyInstance, options: FastifyIdempotencyOptions<unknown>): Promise<void> {
  const lifecycle = createLifecycle(options);
  const { scope, onOutcome } = options;

  fastify.decorate('idempotencyEngine', lifecycle.engine);
  fastify.decorate('idempotencyLifecycle', lifecycle);
  fastify.decorateRequest('idempotency', null);
  keepRawJsonBodies(fastify);

  fastify.decorateReply('idempotent', async function idempotent(this: FastifyReply, work) {
    const run = runs.get(this.request);
    if (run?.context === undefined) {
      // A route without `config.idempotency`: one transaction, a 5xx rolls it back.
      const toStored = async (tx: unknown) => toStoredResponse(await work(tx as never));
      return sendStored(this, await lifecycle.engine.commitWithoutKey(toStored));
    }
    // Sent right away: this is the answer the lifecycle settles on. (A reply is a thenable,
    // so returning it unsent from an async function would wait for a send that never comes.)
    run.committed = await run.context.commit(work as (tx: unknown) => Promise<ResponseDraft>);
    run.sent = true;
    return sendStored(this, run.committed);
  } as FastifyReply['idempotent']);

  fastify.addHook('onRoute', (route: RouteOptions) => {
    const mode = route.config?.idempotency;
    if (mode === undefined) return;
    route.preValidation = [...asArray(route.preValidation), readKey(lifecycle, mode)];
    route.handler = wrapHandler(route.handler, mode);
  });

  function wrapHandler(handler: RouteOptions['handler'], mode: IdempotencyMode): RouteOptions['handler'] {
    return async function lifecycleHandler(this: FastifyInstance, request, reply) {
      const state = request.idempotency;
      if (state === null) return reply; // readKey refused the key and answered
      const run: RouteRun = { context: undefined, committed: undefined, sent: false };
      runs.set(request, run);
      const handled = await lifecycle.handle(
        {
          method: request.method,
          route: request.routeOptions.url ?? request.url,
          path: request.url.split('?')[0] ?? request.url,
          headers: request.headers,
          body: rawBodyOf(request),
          parsedJson: request.body,
          scope: scope(request),
        },
        { mode, key: state.key },
        async (context) => {
          run.context = context;
          // Known now, and needed by onResponse hooks: reply.idempotent sends before we return.
          state.outcome = context.key === undefined ? 'unkeyed' : 'executed';
          state.recordId = context.recordId;
          const returned = await handler.call(this, request, reply);
          if (run.committed !== undefined) return run.committed;
          if (reply.sent)
            throw new Error('an idempotent route answered with reply.send(); use reply.idempotent');
          if (returned === reply || returned === undefined) {
            throw new Error('an idempotent route returned no answer; use reply.idempotent or return a body');
          }
          return { status: reply.statusCode, headers: replyHeaders(reply), body: returned };
        },
      );
      state.outcome = handled.outcome;
      state.recordId = handled.recordId;
      onOutcome?.(handled.outcome, request);
      if (handled.error !== undefined) request.log.error({ err: handled.error }, 'request failed');
      if (reply.sent || run.sent) return reply;
      return sendStored(reply, handled.response);
    };
  }

  function readKey(lifecycle: RequestLifecycle<unknown>, mode: IdempotencyMode) {
    // A callback hook: nothing here waits, so no promise per request.
    return function readIdempotencyKey(
      request: FastifyRequest,
      reply: FastifyReply,
      done: HookHandlerDoneFunction,
    ): void {
      // Node joins a repeated header into one comma-separated value; its distinct copies let
      // the parser say "sent more than once". (Fastify's inject has no headersDistinct.)
      const name = lifecycle.headerName;
      const raw = request.raw.headersDistinct?.[name] ?? request.headers[name];
      let key: string | undefined;
      try {
        key = lifecycle.readKey({ [name]: raw }, mode);
      } catch (error) {
        onOutcome?.('refused', request);
        // Answered from the hook: not calling done() stops Fastify here, so body validation
        // cannot overwrite the status while an async onSend hook still holds the reply.
        sendStored(reply, lifecycle.problem(error));
        return;
      }
      const contextFor = (method: string): RequestContext<unknown> => {
        const context = runs.get(request)?.context;
        if (context === undefined) throw new Error(`${method} is available inside the route handler`);
        return context;
      };
      request.idempotency = {
        key,
        outcome: undefined,
        recordId: undefined,
        idFor: (name) => contextFor('idFor').idFor(name),
        // The context's Tx is the plugin's; the route names its own through `work`'s parameter.
        step: <T, Tx>(name: string, work: (tx: Tx) => T | Promise<T>) =>
          contextFor('step').step<T>(name, work as (tx: unknown) => T | Promise<T>),
        call: (name, work) => contextFor('call').call(name, work),
      };
      done();
    };
  }
}

function sendStored(reply: FastifyReply, response: StoredResponse): FastifyReply {
  reply.code(response.status);
  for (const [name, value] of Object.entries(response.headers)) reply.header(name, value);
  if (response.body.byteLength === 0) return reply.send();
  return reply.send(Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength));
}

function replyHeaders(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}

function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * The plugin. Register it before the routes it protects and mark a route with
 * `config: { idempotency: 'required' | 'optional' | 'off' }`. Generic in the store's
 * transaction type, so `app.register(idempotency<Tx>, …)` types `reply.idempotent`'s `tx`.
 */
export interface IdempotencyPlugin {
  <Tx>(instance: FastifyInstance, options: FastifyIdempotencyOptions<Tx>): Promise<void>;
  // Last, so `app.register(idempotency, …)` infers from it and types `scope`'s request.
  (instance: FastifyInstance, options: FastifyIdempotencyOptions<unknown>): Promise<void>;
}

export const idempotency = asFastifyPlugin(plugin, 'retrysafe-idempotency') as unknown as IdempotencyPlugin;

export default idempotency;
