// The client against the real reference service process: lost responses after commit, keys
// still in use, concurrent edits under update(), and what an unkeyed POST does on a timeout.

import { createClient, type RetryInfo } from 'retrysafe/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDroppingProxy } from '../../../../test/client/servers.js';
import { api, type StartedService, startService } from '../helpers/service.js';

interface User {
  id: string;
  username: string;
  email: string;
  bio?: string;
  interests: string[];
}
interface Order {
  id: string;
  note?: string;
}

let service: StartedService;
beforeAll(async () => {
  service = await startService();
});
afterAll(async () => {
  await service?.stop();
});

const fastRetry = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 };
const order = { items: [{ sku: 'book-1', quantity: 2, unitPriceCents: 1250 }], currency: 'EUR' };

describe('lost answers', () => {
  it('replays an order whose 201 was lost after commit: the caller gets it once, and one order exists', async () => {
    // Tenant b is used by this test alone, so "exactly one order" is a count of the whole tenant.
    // Drop the answer to the first POST /orders only; the retry goes through untouched.
    const once = await startDroppingProxy(
      service.url,
      (req, index) => index === 0 && req.method === 'POST' && req.path === '/orders',
    );
    try {
      const client = createClient({ baseUrl: once.url, token: 'demo-writer-b', retry: fastRetry });
      const result = await client.post<Order>('/orders', { ...order, note: 'lost-response' });
      expect(once.dropped).toBe(1);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result).toMatchObject({ status: 201, replayed: true, attempts: 2 });
      expect(result.location).toBe(`/orders/${result.data.id}`);

      const list = await api(service.url, 'demo-writer-b')('/orders?limit=100');
      expect(list.json.data.map((o: Order) => o.id)).toEqual([result.data.id]);
      expect(once.requests.map((r) => r.headers['x-retry-count'])).toEqual(['0', '1']);
    } finally {
      await once.close();
    }
  });

  it('does not repeat a POST without a key whose answer is slower than the timeout: one user exists', async () => {
    const client = createClient({
      baseUrl: service.url,
      token: 'demo-writer-a',
      timeoutMs: 60,
      retry: fastRetry,
    });
    const result = await client.post(
      '/users',
      { username: 'slow_sam', email: 'sam@example.com' },
      { idempotencyKey: false, headers: { 'x-test-delay-after-commit-ms': '300' } },
    );
    expect(!result.ok && result.error).toMatchObject({
      kind: 'timeout',
      sent: 'maybe',
      retryable: false,
      attempts: 1,
    });
    const list = await api(service.url)('/users?limit=100');
    expect(list.json.data.filter((u: User) => u.username === 'slow_sam')).toHaveLength(1);
  });
});

describe('keys in use', () => {
  it('waits out 409 idempotency-key-in-use from the service, then gets the replayed order', async () => {
    const key = `in-use-${Date.now()}`;
    const raw = api(service.url);
    const holding = () =>
      service.logs.filter((line) => line.includes('holding the request inside its handler')).length;
    const heldBefore = holding();
    const first = raw('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': key, 'x-test-delay-ms': '600' },
    });
    // The service logs the hold from inside the handler, i.e. after the key was claimed.
    for (let i = 0; i < 200 && holding() === heldBefore; i++) await new Promise((r) => setTimeout(r, 10));
    expect(holding()).toBe(heldBefore + 1);
    const retries: RetryInfo[] = [];
    const client = createClient({
      baseUrl: service.url,
      token: 'demo-writer-a',
      retry: fastRetry,
      onRetry: (info) => retries.push(info),
    });
    const result = await client.post<Order>('/orders', order, { idempotencyKey: key });
    const original = await first;
    expect(retries[0]?.error.kind).toBe('in_use');
    expect(retries[0]?.fromRetryAfter).toBe(true);
    expect(result.ok && result.replayed).toBe(true);
    expect(result.ok && result.data.id).toBe(original.json.id);
  });
});

describe('update()', () => {
  it('meets a concurrent edit with 412, re-reads, and keeps the colleague’s change', async () => {
    const me = createClient({ baseUrl: service.url, token: 'demo-writer-a', retry: fastRetry });
    const colleague = createClient({ baseUrl: service.url, token: 'demo-writer-a' });
    const createdUser = await me.post<User>('/users', { username: 'dana', email: 'dana@example.com' });
    if (!createdUser.ok) throw new Error(createdUser.error.message);
    const path = createdUser.location!;

    const seen: User[] = [];
    const updated = await me.update<User>(path, async (user) => {
      seen.push(structuredClone(user));
      if (seen.length === 1) {
        // The colleague saves between our read and our write.
        const theirs = await colleague.update<User>(path, (u) => ({ ...u, interests: ['chess'] }));
        expect(theirs.ok).toBe(true);
      }
      user.bio = 'Likes long walks';
      return user;
    });
    expect(seen.map((u) => u.interests)).toEqual([[], ['chess']]);
    expect(updated.ok).toBe(true);
    if (!updated.ok) return;
    // GET, PUT (412), GET, PUT.
    expect(updated.attempts).toBe(4);
    expect(updated.data).toMatchObject({ bio: 'Likes long walks', interests: ['chess'] });
    const stored = await api(service.url)(path);
    expect(stored.json).toMatchObject({ bio: 'Likes long walks', interests: ['chess'] });
  });

  it('gives up after maxConflictRetries with a message for people', async () => {
    const me = createClient({ baseUrl: service.url, token: 'demo-writer-a', retry: fastRetry });
    const other = createClient({ baseUrl: service.url, token: 'demo-writer-a' });
    const createdUser = await me.post<User>('/users', { username: 'eve_busy', email: 'eve@example.com' });
    if (!createdUser.ok) throw new Error(createdUser.error.message);
    const path = createdUser.location!;
    let calls = 0;
    const fight = await me.update<User>(
      path,
      async (user) => {
        calls += 1;
        // Someone else always writes between our read and our write.
        await other.update<User>(path, (u) => ({ ...u, interests: [...u.interests, `edit-${calls}`] }));
        return { ...user, bio: 'mine' };
      },
      { maxConflictRetries: 2 },
    );
    expect(calls).toBe(3);
    expect(!fight.ok && fight.error.kind).toBe('precondition_failed');
    expect(!fight.ok && fight.error.message).toContain(
      `User ${createdUser.data.id} was changed by someone else`,
    );
    const stored = await api(service.url)(path);
    expect(stored.json.bio).toBeUndefined();
  });
});
