// Regression tests for three Redis-store faults a review found in issue 10's fixes, on the real
// server at 127.0.0.1:6379 under a random prefix deleted afterwards:
// - release ABA: every release wrote the same version line (`c:\n`), so a takeover judged on one
//   release could compare-and-set over the record after a later run took it over, checkpointed
//   and released it again, throwing that run's checkpoint away;
// - phantom counts: a claim that failed after counting its key left the key counted;
// - under-counts: a member counted until its first claim's retention ended even when a later
//   takeover kept the record alive longer, so the scope could hold more than its bound; and,
//   the other way, a refused claim or a replay must not keep a record counted past its end.
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClaimInput } from '../../src/idempotency/store.js';
import { createRedisStore, type IoRedisLike } from '../../src/stores/redis.js';

const filePrefix = `retrysafe-test:${randomBytes(6).toString('hex')}:`;
const client = new Redis({ host: '127.0.0.1', port: 6379 });
let stores = 0;

afterAll(async () => {
  const keys = await client.keys(`${filePrefix}*`);
  if (keys.length > 0) await client.del(...keys);
  await client.quit();
});

type Args = (string | Buffer | number)[];

/** The real client, one command at a time, with a hook that may hold or fail a command. */
function interceptingClient(hook: (command: string, args: Args) => Promise<void> | void): IoRedisLike {
  return {
    callBuffer: async (command, args) => {
      await hook(command, args);
      return client.callBuffer(command, args);
    },
  };
}

function claimInput(overrides: Partial<ClaimInput> = {}): ClaimInput {
  const nowMs = Date.now();
  return {
    scopeKey: 'scope-a',
    fingerprint: 'f1',
    token: randomUUID(),
    recordId: randomUUID(),
    nowMs,
    leaseExpiresAtMs: nowMs + 1_000,
    expiresAtMs: nowMs + 60_000,
    ...overrides,
  };
}

describe('redis store: release markers and scope counting', () => {
  it('a takeover judged on one release cannot overwrite a later run that took over, checkpointed and released (release ABA)', async () => {
    const prefix = `${filePrefix}${++stores}:`;
    const store = createRedisStore({ client, prefix });
    const first = claimInput();
    expect((await store.claim(first)).claimed).toBe(true);
    await store.release(first.scopeKey, first.token);

    // The slow claimer reads the released record, then stalls before its compare-and-set.
    let stall: (() => void) | undefined;
    const stalled = new Promise<void>((resolve) => {
      stall = resolve;
    });
    let reachedSwap!: () => void;
    const atSwap = new Promise<void>((resolve) => {
      reachedSwap = resolve;
    });
    const slowStore = createRedisStore({
      prefix,
      client: interceptingClient(async (command, args) => {
        // EVALSHA sha 1 key version value expireAt: the takeover's compare-and-set.
        if (command === 'EVALSHA' && args.length === 6 && stall !== undefined) {
          reachedSwap();
          await stalled;
        }
      }),
    });
    const slow = slowStore.claim(claimInput());
    await atSwap;

    // Meanwhile another run takes the key over, checkpoints a step and fails (releases).
    const other = claimInput();
    const taken = await store.claim(other);
    expect(taken).toMatchObject({ claimed: true, recordId: first.recordId });
    expect(
      await store.saveData({ scopeKey: other.scopeKey, token: other.token, data: { steps: { a: 1 } } }),
    ).toBe(true);
    await store.release(other.scopeKey, other.token);

    stall!();
    stall = undefined;
    const result = await slow;
    // It must see the later release and take that over, keeping its checkpoint and the same id.
    expect(result).toMatchObject({ claimed: true, recordId: first.recordId, data: { steps: { a: 1 } } });
    expect((await store.get(first.scopeKey))?.data).toEqual({ steps: { a: 1 } });
  });

  it('writes a fresh released marker per release, which reads as released with the same id', async () => {
    const store = createRedisStore({ client, prefix: `${filePrefix}${++stores}:` });
    const lines: string[] = [];
    for (let run = 0; run < 2; run++) {
      const input = claimInput();
      expect((await store.claim(input)).claimed).toBe(true);
      await store.release(input.scopeKey, input.token);
      const raw = (await client.getBuffer(store.keyFor(input.scopeKey)))!;
      lines.push(raw.toString('utf8', 0, raw.indexOf(0x0a)));
      expect(await store.get(input.scopeKey)).toMatchObject({ state: 'released' });
    }
    expect(lines[0]).toMatch(/^c:-/);
    expect(lines[1]).toMatch(/^c:-/);
    expect(lines[0]).not.toBe(lines[1]);
  });

  it('uncounts a key whose claim failed after it was counted (no phantom records in the scope)', async () => {
    let failNextSet = true;
    const store = createRedisStore({
      prefix: `${filePrefix}${++stores}:`,
      client: interceptingClient((command) => {
        if (command === 'SET' && failNextSet) {
          failNextSet = false;
          throw new Error('connection lost');
        }
      }),
    });
    const scopeLimit = { scope: 'tenant-1', maxRecords: 1 };
    await expect(store.claim(claimInput({ scopeKey: 'k1', scopeLimit }))).rejects.toThrow('connection lost');
    expect(await client.zcard(store.scopeSetFor('tenant-1'))).toBe(0);
    // The scope's one place is free for a real record.
    expect((await store.claim(claimInput({ scopeKey: 'k2', scopeLimit }))).claimed).toBe(true);
  });

  it('keeps counting a record for as long as a later takeover keeps it alive (no under-count)', async () => {
    const store = createRedisStore({ client, prefix: `${filePrefix}${++stores}:` });
    const scopeLimit = { scope: 'tenant-2', maxRecords: 1 };
    const base = Date.now();
    const claim = (at: number, scopeKey: string) =>
      store.claim(
        claimInput({
          scopeKey,
          scopeLimit,
          nowMs: base + at,
          leaseExpiresAtMs: base + at + 1_000,
          expiresAtMs: base + at + 60_000,
        }),
      );
    expect((await claim(0, 'k1')).claimed).toBe(true);
    // Its lease lapsed (no release): the same request takes it over half way through retention,
    // which keeps the record until base + 90 s.
    expect((await claim(30_000, 'k1')).claimed).toBe(true);
    // Past the first claim's retention the record is still alive: the scope is still full.
    expect(await claim(65_000, 'k2')).toEqual({ claimed: false, scopeFull: true });
    // After the takeover's retention, the place is free again.
    expect((await claim(90_000, 'k3')).claimed).toBe(true);
  });

  it('does not keep counting a record past its end because a claim of its key was refused', async () => {
    const store = createRedisStore({ client, prefix: `${filePrefix}${++stores}:` });
    const scopeLimit = { scope: 'tenant-3', maxRecords: 1 };
    const base = Date.now();
    const claimAt = (at: number, scopeKey: string, fingerprint = 'f1') =>
      store.claim(
        claimInput({
          scopeKey,
          fingerprint,
          scopeLimit,
          nowMs: base + at,
          leaseExpiresAtMs: base + at + 1_000,
          expiresAtMs: base + at + 60_000,
        }),
      );
    expect((await claimAt(0, 'k1')).claimed).toBe(true);
    // Another body with the same key, while the claim holds it: refused, nothing kept alive.
    expect((await claimAt(30_000, 'k1', 'f2')).claimed).toBe(false);
    // After k1's own retention the scope has room again.
    expect((await claimAt(61_000, 'k2')).claimed).toBe(true);
  });
});
