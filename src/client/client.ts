// The client's public face: `createClient` checks the options once and wires each method to the
// attempt loop (attempts.ts) or to update() (update.ts), each call with its own deadline.

import { type Budget, run } from './attempts.js';
import type {
  Change,
  DeleteOptions,
  GetOptions,
  PostOptions,
  PutOptions,
  UpdateOptions,
} from './call-options.js';
import { type ClientOptions, normalizeOptions } from './options.js';
import type { Call } from './request.js';
import type { Result } from './result.js';
import { update } from './update.js';

export interface Client {
  get<TData = unknown>(path: string, options?: GetOptions<TData>): Promise<Result<TData>>;
  post<TData = unknown>(path: string, body: unknown, options?: PostOptions<TData>): Promise<Result<TData>>;
  put<TData = unknown>(path: string, body: unknown, options?: PutOptions<TData>): Promise<Result<TData>>;
  delete<TData = unknown>(path: string, options?: DeleteOptions<TData>): Promise<Result<TData>>;
  /** Read, change, write with If-Match; on 412 read again and re-apply, a bounded number of times. */
  update<TData = unknown>(
    path: string,
    change: Change<TData>,
    options?: UpdateOptions<TData>,
  ): Promise<Result<TData>>;
}

export function createClient(options: ClientOptions): Client {
  const config = normalizeOptions(options);
  const newBudget = (): Budget => ({ deadlineAtMs: Date.now() + config.deadlineMs });
  return {
    get: (path, callOptions) =>
      run(config, { method: 'GET', path, body: undefined, options: callOptions ?? {} }, newBudget()),
    post: (path, body, callOptions) =>
      run(config, { method: 'POST', path, body, options: callOptions ?? {} }, newBudget()),
    put: (path, body, callOptions) =>
      run(
        config,
        { method: 'PUT', path, body, options: (callOptions ?? {}) as Call['options'] },
        newBudget(),
      ),
    delete: (path, callOptions) =>
      run(config, { method: 'DELETE', path, body: undefined, options: callOptions ?? {} }, newBudget()),
    update: (path, change, callOptions) => update(config, path, change, callOptions ?? {}, newBudget()),
  };
}
