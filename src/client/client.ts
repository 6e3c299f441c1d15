// The client's public face: `createClient` checks the options once and wires each method to the
// attempt loop (attempts.ts) or to update() (update.ts), each call with its own deadline.

import type { StandardSchemaV1 } from '@standard-schema/spec';
import { type Budget, run } from './attempts.js';
import { cachedRun } from './cached-run.js';
import type {
  Change,
  DeleteOptions,
  GetOptions,
  HeadOptions,
  PatchOptions,
  PostOptions,
  PutOptions,
  UpdateOptions,
} from './call-options.js';
import type { OperationRef } from './operation.js';
import { type ClientOptions, type NormalizedOptions, normalizeOptions } from './options.js';
import { type PageOptions, paginate } from './pagination.js';
import { configForCall } from './per-call.js';
import { type PollOptions, type PollResult, poll } from './poll.js';
import { type Call, resolveUrl } from './request.js';
import { type FillOptions, fill, type ReserveAndFillOptions, reserveAndFill } from './reservation.js';
import type { Result } from './result.js';
import { update } from './update.js';

/** What a write accepts as its body: the schema's input type when a schema is given, else anything. */
export type BodyFor<TSchema extends StandardSchemaV1> = StandardSchemaV1.InferInput<TSchema>;

export interface Client {
  get(path: string, options: GetOptions<string> & { responseType: 'text' }): Promise<Result<string>>;
  get(path: string, options: GetOptions<Uint8Array> & { responseType: 'bytes' }): Promise<Result<Uint8Array>>;
  get(
    path: string,
    options: GetOptions<ReadableStream<Uint8Array>> & { responseType: 'stream' },
  ): Promise<Result<ReadableStream<Uint8Array>>>;
  get(path: string, options: GetOptions<Response> & { responseType: 'response' }): Promise<Result<Response>>;
  get<TData = unknown>(path: string, options?: GetOptions<TData>): Promise<Result<TData>>;
  /** With a `schema`, `body` is typed as that schema's input. */
  post<TData = unknown, TSchema extends StandardSchemaV1 = StandardSchemaV1>(
    path: string,
    body: BodyFor<TSchema>,
    options?: PostOptions<TData> & { schema?: TSchema },
  ): Promise<Result<TData>>;
  put<TData = unknown, TSchema extends StandardSchemaV1 = StandardSchemaV1>(
    path: string,
    body: BodyFor<TSchema>,
    options?: PutOptions<TData> & { schema?: TSchema },
  ): Promise<Result<TData>>;
  /** Retried only with `ifMatch` or your own `idempotencyKey`. */
  patch<TData = unknown, TSchema extends StandardSchemaV1 = StandardSchemaV1>(
    path: string,
    body: BodyFor<TSchema>,
    options?: PatchOptions<TData> & { schema?: TSchema },
  ): Promise<Result<TData>>;
  /** The headers only (`etag`, `headers`); `data` is undefined. */
  head(path: string, options?: HeadOptions): Promise<Result<undefined>>;
  delete<TData = unknown>(path: string, options?: DeleteOptions<TData>): Promise<Result<TData>>;
  /**
   * Every page of a list that links to the next with `Link: <…>; rel="next"`: one result per
   * page, ending after the last page, at the first failure (yielded), or after `maxPages`.
   */
  pages<TData = unknown>(
    path: string,
    options?: PageOptions<TData>,
  ): AsyncGenerator<Result<TData>, void, undefined>;
  /** Read, change, write with If-Match; on 412 read again and re-apply, a bounded number of times. */
  update<TData = unknown>(
    path: string,
    change: Change<TData>,
    options?: UpdateOptions<TData>,
  ): Promise<Result<TData>>;
  /**
   * Follows a long-running operation (a 202 result, its `operation`, or the monitor's URL) until
   * it succeeds, fails or is canceled, honouring `Retry-After`, under one deadline. Never throws
   * on HTTP outcomes; a `timeout` result carries `operationUrl` to resume from.
   */
  poll(
    target: OperationRef | { operation?: OperationRef } | string,
    options?: PollOptions,
  ): Promise<PollResult>;
  /**
   * POST-PUT: books a resource with an empty POST to `reservePath`, awaits `persist(url, etag)`,
   * then PUTs `body` with If-Match (retried safely). After a crash, resume with `fill()`.
   */
  reserveAndFill<TData = unknown>(
    reservePath: string,
    body: unknown,
    options: ReserveAndFillOptions<TData>,
  ): Promise<Result<TData>>;
  /** Fills a reservation: PUT `body` to `url` with `If-Match: etag`; the identical fill repeated gets the same answer. */
  fill<TData = unknown>(
    url: string,
    etag: string,
    body: unknown,
    options?: FillOptions<TData>,
  ): Promise<Result<TData>>;
}

export function createClient(options: ClientOptions): Client {
  const config = normalizeOptions(options);
  // async, so a bad per-call option rejects like every other programmer error of a call.
  const send = async <TData>(
    method: Call['method'],
    path: string,
    body: unknown,
    callOptions: Call['options'] | undefined,
  ): Promise<Result<TData>> => {
    const callConfig = configForCall(config, callOptions);
    const call: Call = { method, path, body, options: callOptions ?? {} };
    const cache = config.etagCache;
    if (cache === undefined) return run(callConfig, call, budgetFor(callConfig));
    return cachedRun<TData>(cache, resolveUrl(config, path, call.options.query), call, (withEtag) =>
      run(callConfig, withEtag, budgetFor(callConfig)),
    );
  };
  const client: Client = {
    // One implementation behind the typed overloads: `data` is whatever responseType produced.
    get: ((path: string, callOptions?: GetOptions<unknown>) =>
      send('GET', path, undefined, callOptions)) as Client['get'],
    post: (path, body, callOptions) => send('POST', path, body, callOptions),
    put: (path, body, callOptions) => send('PUT', path, body, callOptions as Call['options'] | undefined),
    patch: (path, body, callOptions) => send('PATCH', path, body, callOptions),
    head: (path, callOptions) => send('HEAD', path, undefined, callOptions),
    delete: (path, callOptions) => send('DELETE', path, undefined, callOptions),
    update: async (path, change, callOptions) => {
      const callConfig = configForCall(config, callOptions);
      const result = await update(callConfig, path, change, callOptions ?? {}, budgetFor(callConfig));
      // It wrote (or may have): the cached copy is no longer the one to offer on a 304.
      config.etagCache?.forget(resolveUrl(config, path, undefined));
      return result;
    },
    pages: (path, callOptions) =>
      paginate(config.baseUrl.origin, path, callOptions ?? {}, (page, pageOptions) =>
        client.get(page, pageOptions),
      ),
    poll: (target, pollOptions) =>
      poll((path, getOptions) => client.get(path, getOptions), config.timeoutMs, target, pollOptions ?? {}),
    reserveAndFill: (reservePath, body, reserveOptions) =>
      reserveAndFill(reservationCalls(client), reservePath, body, reserveOptions),
    fill: (url, etag, body, fillOptions) =>
      fill(reservationCalls(client), url, etag, body, fillOptions ?? {}),
  };
  return client;
}

function reservationCalls(client: Client) {
  return {
    post: (path: string, body: unknown, options: FillOptions) => client.post(path, body, options),
    put: <TData>(path: string, body: unknown, options: PutOptions<TData>) =>
      client.put<TData>(path, body, options),
  };
}

/** One deadline per logical call, from the call's own `deadlineMs` when it set one. */
function budgetFor(config: NormalizedOptions): Budget {
  return { deadlineAtMs: Date.now() + config.deadlineMs };
}
