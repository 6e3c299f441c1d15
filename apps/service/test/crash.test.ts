// End-to-end crash safety: a real service process killed with SIGKILL mid-request, then
// restarted on the same SQLite file. Neither a crash before commit nor after commit may
// produce a duplicate or lose the order.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'crash-1', quantity: 1, unitPriceCents: 999 }], currency: 'EUR' };
const env = { IDEMPOTENCY_LEASE_MS: '4000' };

let dir: string;
const running: StartedService[] = [];

afterEach(async () => {
  for (const s of running.splice(0)) await s.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function start(dbPath: string): Promise<StartedService> {
  const s = await startService({ dbPath, env });
  running.push(s);
  return s;
}

/** POST /orders with `key` to a given service process, with optional test-hook headers. */
function poster(key: string) {
  return (s: StartedService, extra: Record<string, string> = {}) =>
    api(s.url)('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key, ...extra } });
}

async function waitFor(predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a server killed with SIGKILL', () => {
  it('inside the handler: the claim outlives the crash until its lease ends, then the retry creates exactly one order', async () => {
    dir = mkdtempSync(join(tmpdir(), 'retrysafe-crash-'));
    const dbPath = join(dir, 'crash.db');
    const key = randomUUID();
    const first = await start(dbPath);
    const post = poster(key);

    const doomed = post(first, { 'x-test-delay-ms': '60000' }).catch((error: unknown) => error);
    await waitFor(async () => (await post(first)).status === 409, 'the first request to hold its claim');
    await first.kill('SIGKILL');
    expect(await doomed).toBeInstanceOf(Error); // the caller never got an answer

    const second = await start(dbPath);
    const statuses: number[] = [];
    let final: Awaited<ReturnType<typeof post>> | undefined;
    await waitFor(async () => {
      final = await post(second);
      statuses.push(final.status);
      return final.status !== 409;
    }, 'the lease of the killed request to end');
    expect(statuses[0]).toBe(409); // the dead request's lease still held the key after restart
    expect(final!.status).toBe(201);
    expect(final!.headers.get('idempotent-replayed')).toBeNull();

    const replay = await post(second);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.id).toBe(final!.json.id);
    const orders = await api(second.url)('/orders?limit=100');
    expect(orders.json.data).toHaveLength(1);
  });

  it('after the commit but before the response was read: the retry replays the committed order', async () => {
    dir = mkdtempSync(join(tmpdir(), 'retrysafe-crash-'));
    const dbPath = join(dir, 'crash.db');
    const key = randomUUID();
    const first = await start(dbPath);
    const post = poster(key);

    const doomed = post(first, { 'x-test-delay-after-commit-ms': '60000' }).catch((error: unknown) => error);
    await waitFor(
      () => first.logs.some((line) => line.includes('holding the response after commit')),
      'the first request to commit',
    );
    await first.kill('SIGKILL');
    expect(await doomed).toBeInstanceOf(Error);

    const second = await start(dbPath);
    const retry = await post(second);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    const orders = await api(second.url)('/orders?limit=100');
    expect(orders.json.data).toHaveLength(1);
    expect(orders.json.data[0].id).toBe(retry.json.id);
  });
});

describe('retention', () => {
  it('forgets a key after IDEMPOTENCY_RETENTION_MS, so the same key then creates a new order', async () => {
    dir = mkdtempSync(join(tmpdir(), 'retrysafe-retention-'));
    const s = await startService({
      dbPath: join(dir, 'r.db'),
      env: { IDEMPOTENCY_LEASE_MS: '300', IDEMPOTENCY_RETENTION_MS: '600' },
    });
    running.push(s);
    const post = () =>
      api(s.url)('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': 'kept-briefly' } });
    const first = await post();
    const replay = await post();
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    await new Promise((r) => setTimeout(r, 800));
    const later = await post();
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect(later.json.id).not.toBe(first.json.id);
  });
});
