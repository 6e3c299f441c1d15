// Hooks: caller code run before each attempt (headers, signing), after each answer, and before
// each retry, as ky's hooks are, with the attempt number and the call's idempotency key. A hook
// that throws is a programmer error: the call rejects with it, as with other programmer errors.

import type { ClientError } from './result.js';

export interface AttemptContext {
  method: string;
  url: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** The key this call sends on every attempt, if any. */
  idempotencyKey: string | undefined;
}

export interface BeforeRequestContext extends AttemptContext {
  /** This attempt's headers; change them here (a signature, a fresh token). */
  headers: Headers;
}

export interface AfterResponseContext extends AttemptContext {
  status: number;
  /** The answer's headers (read only: the answer is already judged from them). */
  headers: Headers;
}

export interface BeforeRetryContext extends AttemptContext {
  /** Why the attempt failed. */
  error: ClientError;
  /** The wait before the next attempt. */
  delayMs: number;
  /** Whether the wait came from the server's `Retry-After`. */
  fromRetryAfter: boolean;
}

type Hook<TContext> = (context: TContext) => void | Promise<void>;

export interface Hooks {
  beforeRequest?: Hook<BeforeRequestContext>[];
  afterResponse?: Hook<AfterResponseContext>[];
  beforeRetry?: Hook<BeforeRetryContext>[];
}

export interface NormalizedHooks {
  beforeRequest: Hook<BeforeRequestContext>[];
  afterResponse: Hook<AfterResponseContext>[];
  beforeRetry: Hook<BeforeRetryContext>[];
}

export const noHooks: NormalizedHooks = Object.freeze({
  beforeRequest: [],
  afterResponse: [],
  beforeRetry: [],
});

/** Client hooks first, then the call's; each list checked once here. */
export function mergeHooks(where: string, base: NormalizedHooks, extra: Hooks | undefined): NormalizedHooks {
  if (extra === undefined) return base;
  if (typeof extra !== 'object' || extra === null) throw new TypeError(`${where}: hooks must be an object`);
  return {
    beforeRequest: [...base.beforeRequest, ...hookList(where, 'beforeRequest', extra.beforeRequest)],
    afterResponse: [...base.afterResponse, ...hookList(where, 'afterResponse', extra.afterResponse)],
    beforeRetry: [...base.beforeRetry, ...hookList(where, 'beforeRetry', extra.beforeRetry)],
  };
}

function hookList<T>(where: string, name: string, list: T[] | undefined): T[] {
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((hook) => typeof hook === 'function')) {
    throw new TypeError(`${where}: hooks.${name} must be an array of functions`);
  }
  return list;
}

/** Runs hooks one after another, each awaited, so a signing hook sees the headers before it. */
export async function runHooks<TContext>(hooks: Hook<TContext>[], context: TContext): Promise<void> {
  for (const hook of hooks) await hook(context);
}
