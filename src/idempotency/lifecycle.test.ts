// Regressions in the request lifecycle found in review: a throw after a successful commit was
// answered "500, nothing was saved" although the writes and the stored answer were in; a 4xx
// whose answer could not be stored left the claim open (409 until the lease ran out); and a
// 500 said "nothing was saved" where the store cannot know (records outside the transaction).
// And steps on a store that cannot checkpoint are refused before any of their work runs.
import { describe, expect, it } from 'vitest';
import { ConflictError, ServiceUnavailableError } from '../http/problem.js';
import { createMemoryStore } from '../stores/memory.js';
import { StepsUnsupportedError } from './engine.js';
import { createLifecycle, type NeutralRequest } from './lifecycle.js';
import type { IdempotencyStore } from './store.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function request(key: string): NeutralRequest {
  return {
    method: 'POST',
    route: '/orders',
    path: '/orders',
    headers: { 'idempotency-key': key, 'content-type': 'application/json' },
    body: encoder.encode('{"cents":5}'),
    scope: 'tenant',
  };
}

describe('the request lifecycle settles honestly', () => {
  it('answers a 503 after a finished step with its status and Retry-After, never with "nothing was saved"', async () => {
    const lifecycle = createLifecycle({ store: createMemoryStore() });
    const failed = await lifecycle.handle(request('k-steps'), { mode: 'required' }, async (ctx) => {
      await ctx.step('order', () => 'o-1');
      throw new ServiceUnavailableError('The provider is down; nothing was saved.', 3);
    });
    expect(failed.response.status).toBe(503);
    expect(failed.response.headers['retry-after']).toBe('3');
    const body = JSON.parse(decoder.decode(failed.response.body)) as { detail: string; type: string };
    expect(body.detail).not.toMatch(/nothing was saved/);
    expect(body.detail).toMatch(/steps it had finished are kept/);
    expect(body.type).toBe('urn:retrysafe:problem:service-unavailable');
  });

  it('answers with the committed answer when the handler throws after its commit, and replays it', async () => {
    const lifecycle = createLifecycle({ store: createMemoryStore() });
    const first = await lifecycle.handle(request('k1'), { mode: 'required' }, async (ctx) => {
      await ctx.commit(() => ({ status: 201, body: { id: 'o-1' } }));
      throw new Error('the log line after the commit failed');
    });
    expect(first.response.status).toBe(201);
    expect(first.error).toBeInstanceOf(Error);
    const retry = await lifecycle.handle(request('k1'), { mode: 'required' }, () => {
      throw new Error('must not run again');
    });
    expect(retry.outcome).toBe('replayed');
    expect(decoder.decode(retry.response.body)).toBe('{"id":"o-1"}');
  });

  it('frees the key when a thrown 4xx cannot be stored, so the retry executes instead of 409', async () => {
    const memory = createMemoryStore();
    let failCompletes = 1;
    const store: IdempotencyStore<never> = {
      claim: (input) => memory.claim(input),
      complete: (input) => {
        if (failCompletes-- > 0) return Promise.reject(new Error('store went away'));
        return memory.complete(input);
      },
      release: (scopeKey, token) => memory.release(scopeKey, token),
      reap: (nowMs, limit) => memory.reap(nowMs, limit),
    };
    const lifecycle = createLifecycle({ store });
    const first = await lifecycle.handle(request('k2'), { mode: 'required' }, () => {
      throw new ConflictError('taken', 'username-taken');
    });
    expect(first.response.status).toBe(503);
    let ran = 0;
    const retry = await lifecycle.handle(request('k2'), { mode: 'required' }, () => {
      ran++;
      return { status: 201, body: { ok: true } };
    });
    expect(retry.outcome).toBe('executed');
    expect(retry.response.status).toBe(201);
    expect(ran).toBe(1);
  });

  it('does not claim "nothing was saved" for a failure when records live outside the transaction', async () => {
    const lifecycle = createLifecycle({ store: createMemoryStore() });
    expect(lifecycle.engine.guarantee).toBe('at-least-once-per-lease');
    const failed = await lifecycle.handle(request('k3'), { mode: 'required' }, () => {
      throw new Error('boom');
    });
    expect(failed.response.status).toBe(500);
    const detail = (JSON.parse(decoder.decode(failed.response.body)) as { detail: string }).detail;
    expect(detail).not.toMatch(/nothing was saved/);
    expect(detail).toMatch(/Retry with the same Idempotency-Key/);
  });
});

describe('steps need a store that checkpoints', () => {
  it('refuses step() and call() on a store without saveData before their work runs, and frees the key', async () => {
    const memory = createMemoryStore();
    const store: IdempotencyStore<never> = {
      claim: (input) => memory.claim(input),
      complete: (input) => memory.complete(input),
      release: (scopeKey, token) => memory.release(scopeKey, token),
      reap: (nowMs, limit) => memory.reap(nowMs, limit),
    };
    const lifecycle = createLifecycle({ store });
    let ran = 0;
    for (const use of ['step', 'call'] as const) {
      const failed = await lifecycle.handle(request(`k-${use}`), { mode: 'required' }, async (ctx) => {
        if (use === 'step') await ctx.step('order', () => ran++);
        else await ctx.call('charge', () => ran++);
        return { status: 201 };
      });
      expect(failed.response.status).toBe(500);
      expect(failed.error).toBeInstanceOf(StepsUnsupportedError);
      expect((failed.error as Error).message).toMatch(/saveData/);
      // Released, not stuck in use: the next request with the key runs at once.
      const retry = await lifecycle.handle(request(`k-${use}`), { mode: 'required' }, () => ({
        status: 201,
      }));
      expect(retry.outcome).toBe('executed');
    }
    expect(ran).toBe(0);
  });
});
