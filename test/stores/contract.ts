// The store contract suite: one set of cases every idempotency store must pass, run against
// real backends. Cases a user would hit go through the real engine; primitives use the store.
import { randomBytes, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { idempotency, problemErrorHandler } from '../../src/adapters/fastify.js';
import {
  type BeginResult,
  createIdempotencyEngine,
  type Execution,
  type IdempotencyEngine,
  type IdempotentRequest,
} from '../../src/idempotency/engine.js';
import {
  IdempotencyKeyInUseError,
  IdempotencyLeaseLostError,
  IdempotencyScopeFullError,
  IdempotencyStoreUnavailableError,
  StoredResponseTooLargeError,
} from '../../src/idempotency/errors.js';
import { fingerprintRequest } from '../../src/idempotency/fingerprint.js';
import {
  type ClaimInput,
  currentRecordFormatVersion,
  type IdempotencyStore,
  type StoredResponse,
} from '../../src/idempotency/store.js';

/** A record as the releases before record formats wrote it: no format version, no data part. */
export interface Format1Record {
  scopeKey: string;
  recordId: string;
  fingerprint: string;
  token: string;
  leaseExpiresAtMs: number;
  expiresAtMs: number;
  /** Present: a completed record; absent: a claim. */
  response?: StoredResponse;
}

export interface StoreCapabilities {
  /** `reaper`: `reap` deletes expired records in bounded batches. `ttl`: the backend expires them itself. */
  expiry: 'reaper' | 'ttl';
  /** The store runs the handler's writes and the fenced completion in one transaction. */
  transactional: boolean;
  /** False: concurrent claims of one scope may pass `maxRecordsPerScope` by as many as race (PostgreSQL). */
  exactScopeBound?: boolean;
}

export interface StoreHarness<Tx> {
  store: IdempotencyStore<Tx>;
  /** Transactional stores: a business table the handler writes to inside the store's transaction. */
  business?: { insert(tx: Tx, id: string): Promise<void>; count(): Promise<number> };
  /** Writes a record with raw SQL or raw Redis commands exactly as the release before formats did. */
  writeFormat1Record?(record: Format1Record): Promise<void>;
  /** TTL stores: the backend's remaining time to live of the record for `scopeKey`. */
  ttlMs?(scopeKey: string): Promise<number>;
  cleanup(): Promise<void>;
}

export interface StoreFactory<Tx> {
  /** A fresh, empty store (its own table or key prefix), called before every case. */
  create(): Promise<StoreHarness<Tx>>;
  /** The harness can write records as the release before formats did (`writeFormat1Record`). */
  writesFormat1?: boolean;
  /** The same kind of store pointed at a backend that is down (e.g. a closed port). */
  unavailable?(): Promise<{ store: IdempotencyStore<Tx>; cleanup(): Promise<void> }>;
}

const leaseMs = 30_000;
const retentionMs = 60 * 60_000;
const encoder = new TextEncoder();

export function describeStoreContract<Tx>(
  name: string,
  factory: StoreFactory<Tx>,
  capabilities: StoreCapabilities,
) {
  describe(`${name} store contract`, () => {
    let harness: StoreHarness<Tx>;
    // Logical time the tests move by hand. It starts at the real time only because Redis TTLs
    // are absolute deadlines; no assertion depends on the wall clock.
    let clock: { nowMs: number };
    let engine: IdempotencyEngine<Tx>;

    beforeEach(async () => {
      harness = await factory.create();
      clock = { nowMs: Date.now() };
      engine = createIdempotencyEngine<Tx>({
        store: harness.store,
        leaseMs,
        retentionMs,
        now: () => clock.nowMs,
      });
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    it('lets exactly one of 100 concurrent requests with one key execute; the others see it in use', async () => {
      const request = keyedRequest();
      const results = await Promise.all(Array.from({ length: 100 }, () => engine.begin(request)));
      const outcomes = results.map((result) => result.outcome);
      expect(outcomes.filter((outcome) => outcome === 'executed')).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome === 'in_use')).toHaveLength(99);
      const winner = results.find((result) => result.outcome === 'executed');
      await executed(winner).commit(async () => response(201, 'created once'));
      expect(await replayedBody(engine.begin(request))).toBe('created once');
    });

    it('lets exactly one of 100 concurrent claims win and shows the others the winner', async () => {
      const scopeKey = `scope-${randomUUID()}`;
      const inputs = Array.from({ length: 100 }, () => claimInput(scopeKey, clock.nowMs));
      const results = await Promise.all(inputs.map((input) => harness.store.claim(input)));
      const winners = results.flatMap((result, index) => (result.claimed ? [inputs[index]!] : []));
      expect(winners).toHaveLength(1);
      for (const result of results) {
        if (result.claimed) continue;
        expect(result.record).toMatchObject({ state: 'claimed', token: winners[0]!.token });
      }
    });

    it('reports the record that refused a claim exactly, with numeric times', async () => {
      const scopeKey = `scope-${randomUUID()}`;
      const first = claimInput(scopeKey, clock.nowMs);
      expect(await harness.store.claim(first)).toEqual({ claimed: true, recordId: first.recordId, data: {} });
      const second = await harness.store.claim({
        ...claimInput(scopeKey, clock.nowMs + 1),
        fingerprint: first.fingerprint,
      });
      expect(second).toEqual({
        claimed: false,
        record: {
          state: 'claimed',
          scopeKey,
          recordId: first.recordId,
          fingerprint: first.fingerprint,
          token: first.token,
          leaseExpiresAtMs: first.leaseExpiresAtMs,
          expiresAtMs: first.expiresAtMs,
          formatVersion: currentRecordFormatVersion,
          data: {},
        },
      });
    });

    describe('record format and data part', () => {
      it('writes the current format with the data given on claim, and shows it to the next claim', async () => {
        const scopeKey = `scope-${randomUUID()}`;
        const data = { steps: { charge: { done: true, at: 3 } }, note: 'ü "quoted" ,"data":' };
        const first = { ...claimInput(scopeKey, clock.nowMs), data };
        expect(await harness.store.claim(first)).toEqual({ claimed: true, recordId: first.recordId, data });
        const refused = await harness.store.claim({ ...claimInput(scopeKey, clock.nowMs + 1) });
        expect(refused).toMatchObject({
          claimed: false,
          record: { state: 'claimed', formatVersion: currentRecordFormatVersion, data },
        });
      });

      it('saves data only while the token holds the claim, and keeps it across a lease takeover', async () => {
        const scopeKey = `scope-${randomUUID()}`;
        const first = claimInput(scopeKey, clock.nowMs);
        await harness.store.claim(first);
        expect(harness.store.saveData).toBeTypeOf('function');
        const saveData = harness.store.saveData!.bind(harness.store);
        expect(await saveData({ scopeKey, token: randomUUID(), data: { stolen: true } })).toBe(false);
        expect(
          await saveData({ scopeKey: `scope-${randomUUID()}`, token: first.token, data: { x: 1 } }),
        ).toBe(false);
        expect(await saveData({ scopeKey, token: first.token, data: { step: 'reserve', items: [] } })).toBe(
          true,
        );
        expect(await saveData({ scopeKey, token: first.token, data: { step: 'charge', items: [1] } })).toBe(
          true,
        );
        // The lease lapses; the same request takes over, keeps the record id and what was checkpointed.
        const takeover = {
          ...claimInput(scopeKey, first.leaseExpiresAtMs),
          fingerprint: first.fingerprint,
          data: { ignored: 'a takeover keeps the record data' },
        };
        expect(await harness.store.claim(takeover)).toEqual({
          claimed: true,
          recordId: first.recordId,
          data: { step: 'charge', items: [1] },
        });
        expect(await saveData({ scopeKey, token: first.token, data: { late: true } })).toBe(false);
        expect(await saveData({ scopeKey, token: takeover.token, data: { step: 'ship' } })).toBe(true);
        const completion = {
          scopeKey,
          token: takeover.token,
          response: response(201, 'shipped'),
          expiresAtMs: takeover.expiresAtMs,
        };
        expect(await harness.store.complete(completion)).toBe(true);
        // A completed record is no claim: its data cannot be checkpointed any more.
        expect(await saveData({ scopeKey, token: takeover.token, data: { after: true } })).toBe(false);
        const record = await harness.store.claim(claimInput(scopeKey, takeover.nowMs + 1));
        expect(record).toMatchObject({
          claimed: false,
          record: { state: 'completed', data: { step: 'ship' } },
        });
      });

      it('replaces the data part on completion when given, and starts a new record from the claim data', async () => {
        const scopeKey = `scope-${randomUUID()}`;
        const first = { ...claimInput(scopeKey, clock.nowMs), data: { at: 'claim' } };
        await harness.store.claim(first);
        await harness.store.complete({
          scopeKey,
          token: first.token,
          response: response(201, 'done'),
          expiresAtMs: first.expiresAtMs,
          data: { at: 'complete', operation: { id: 'op-1' } },
        });
        const completed = await harness.store.claim(claimInput(scopeKey, clock.nowMs + 1));
        expect(completed).toMatchObject({
          claimed: false,
          record: { state: 'completed', data: { at: 'complete', operation: { id: 'op-1' } } },
        });
        // Retention over: a new record, with a new id and the new claim's data.
        const fresh = { ...claimInput(scopeKey, first.expiresAtMs), data: { at: 'new record' } };
        expect(await harness.store.claim(fresh)).toEqual({
          claimed: true,
          recordId: fresh.recordId,
          data: { at: 'new record' },
        });
      });

      if (factory.writesFormat1) {
        it('reads a completed record of the release before formats as format 1 and replays it byte for byte', async () => {
          const request = keyedRequest();
          // The key is written only by the release before formats: nothing of ours claims it first.
          const probe = { scopeKey: engine.scopeKey(request) };
          const fingerprint = fingerprintRequest(request);
          const original: StoredResponse = {
            status: 201,
            headers: { 'content-type': 'application/json', location: '/orders/o-legacy', etag: '"v1"' },
            body: Uint8Array.from([0x7b, 0x7d, 0x00, 0xff, 0x0a, 0x0d, 0xe2, 0x9c, 0x93]),
          };
          const legacy: Format1Record = {
            scopeKey: probe.scopeKey,
            recordId: `legacy-${randomUUID()}`,
            fingerprint,
            token: randomUUID(),
            leaseExpiresAtMs: clock.nowMs + leaseMs,
            expiresAtMs: clock.nowMs + retentionMs,
            response: original,
          };
          await harness.writeFormat1Record!(legacy);
          const refused = await harness.store.claim(claimInput(probe.scopeKey, clock.nowMs));
          expect(refused).toEqual({
            claimed: false,
            record: {
              state: 'completed',
              scopeKey: legacy.scopeKey,
              recordId: legacy.recordId,
              fingerprint: legacy.fingerprint,
              expiresAtMs: legacy.expiresAtMs,
              response: original,
              formatVersion: 1,
              data: {},
            },
          });
          expect(await engine.begin(request)).toEqual({
            outcome: 'replayed',
            recordId: legacy.recordId,
            response: original,
          });
        });

        it('takes over a lapsed claim of the release before formats, keeping its id, and completes it', async () => {
          const scopeKey = `scope-${randomUUID()}`;
          const legacy: Format1Record = {
            scopeKey,
            recordId: `legacy-${randomUUID()}`,
            fingerprint: `fp-${randomUUID()}`,
            token: randomUUID(),
            leaseExpiresAtMs: clock.nowMs + leaseMs,
            expiresAtMs: clock.nowMs + retentionMs,
          };
          await harness.writeFormat1Record!(legacy);
          const during = await harness.store.claim(claimInput(scopeKey, clock.nowMs));
          expect(during).toMatchObject({
            claimed: false,
            record: { state: 'claimed', token: legacy.token, formatVersion: 1, data: {} },
          });
          // The old claim's holder may still checkpoint (the format is upgraded in place).
          expect(await harness.store.saveData!({ scopeKey, token: legacy.token, data: { n: 1 } })).toBe(true);
          const takeover = {
            ...claimInput(scopeKey, legacy.leaseExpiresAtMs),
            fingerprint: legacy.fingerprint,
          };
          expect(await harness.store.claim(takeover)).toEqual({
            claimed: true,
            recordId: legacy.recordId,
            data: { n: 1 },
          });
          const completion = {
            scopeKey,
            token: takeover.token,
            response: response(201, 'finished'),
            expiresAtMs: takeover.expiresAtMs,
          };
          expect(await harness.store.complete(completion)).toBe(true);
          const after = await harness.store.claim(claimInput(scopeKey, takeover.nowMs + 1));
          expect(after).toMatchObject({
            claimed: false,
            record: {
              state: 'completed',
              recordId: legacy.recordId,
              formatVersion: currentRecordFormatVersion,
            },
          });
        });
      }
    });

    it('answers in use while the lease holds, then lets a retry take over with the same record id', async () => {
      const request = keyedRequest();
      const first = executed(await engine.begin(request));
      clock.nowMs += leaseMs - 1;
      const during = await engine.begin(request);
      expect(during.outcome).toBe('in_use');
      expect(during.outcome === 'in_use' && during.error).toBeInstanceOf(IdempotencyKeyInUseError);
      clock.nowMs += 1;
      const takeover = executed(await engine.begin(request));
      expect(takeover.recordId).toBe(first.recordId);
      expect(takeover.token).not.toBe(first.token);
    });

    it('refuses the fenced completion of a request whose lease was taken over', async () => {
      const request = keyedRequest();
      const slow = executed(await engine.begin(request));
      clock.nowMs += leaseMs;
      const retry = executed(await engine.begin(request));
      const stale = {
        scopeKey: slow.scopeKey,
        token: slow.token,
        response: response(201, 'slow'),
        expiresAtMs: 0,
      };
      expect(await harness.store.complete({ ...stale, expiresAtMs: clock.nowMs + retentionMs })).toBe(false);
      await expect(slow.commit(async () => response(201, 'slow'))).rejects.toBeInstanceOf(
        IdempotencyLeaseLostError,
      );
      await retry.commit(async () => response(201, 'retry'));
      expect(await replayedBody(engine.begin(request))).toBe('retry');
    });

    describe('a failed takeover made a second order with Redis records', () => {
      it('keeps the record id through a takeover, its failed run and its release: the retry gets the SAME id', async () => {
        const request = keyedRequest();
        const slow = executed(await engine.begin(request));
        clock.nowMs += leaseMs;
        const takeover = executed(await engine.begin(request));
        expect(takeover.recordId).toBe(slow.recordId);
        // The takeover fails (a 5xx answer): its claim is released, and must not forget the id.
        expect((await takeover.commit(async () => response(500, 'failed'))).status).toBe(500);
        const retry = executed(await engine.begin(request));
        expect(retry.recordId).toBe(slow.recordId);
        expect(retry.idFor('order')).toBe(slow.idFor('order'));
        // The slow run still cannot settle the key; the retry can.
        await expect(slow.complete(response(201, 'slow'))).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
        await retry.commit(async () => response(201, 'retry'));
        expect(await replayedBody(engine.begin(request))).toBe('retry');
      });

      it('releases into a record that keeps its id, data and fingerprint, taken over at once by the same request', async () => {
        const scopeKey = `scope-${randomUUID()}`;
        const first = claimInput(scopeKey, clock.nowMs);
        await harness.store.claim(first);
        expect(
          await harness.store.saveData!({ scopeKey, token: first.token, data: { step: 'charged' } }),
        ).toBe(true);
        const takeover = {
          ...claimInput(scopeKey, first.leaseExpiresAtMs),
          fingerprint: first.fingerprint,
        };
        expect(await harness.store.claim(takeover)).toMatchObject({
          claimed: true,
          recordId: first.recordId,
        });
        await harness.store.release(scopeKey, takeover.token);
        // Another request under the key is refused (422 in the engine), and sees what was kept.
        const other = await harness.store.claim(claimInput(scopeKey, takeover.nowMs + 1));
        expect(other).toEqual({
          claimed: false,
          record: {
            state: 'released',
            scopeKey,
            recordId: first.recordId,
            fingerprint: first.fingerprint,
            expiresAtMs: takeover.expiresAtMs,
            formatVersion: currentRecordFormatVersion,
            data: { step: 'charged' },
          },
        });
        // Neither released token can complete it; the same request claims it at once, lease or not.
        for (const token of [first.token, takeover.token]) {
          const completion = {
            scopeKey,
            token,
            response: response(201, 'x'),
            expiresAtMs: takeover.expiresAtMs,
          };
          expect(await harness.store.complete(completion)).toBe(false);
        }
        const retry = { ...claimInput(scopeKey, takeover.nowMs + 1), fingerprint: first.fingerprint };
        expect(await harness.store.claim(retry)).toEqual({
          claimed: true,
          recordId: first.recordId,
          data: { step: 'charged' },
        });
      });

      it('answers a released key reused with another body as a mismatch, not as a new record', async () => {
        const request = keyedRequest();
        const first = executed(await engine.begin(request));
        await first.release();
        expect((await engine.begin({ ...request, body: { sku: 'other' } })).outcome).toBe('mismatch');
        expect(executed(await engine.begin(request)).recordId).toBe(first.recordId);
      });

      it('never tells an overtaken run "nothing was kept" when its writes commit outside the store', async () => {
        const request = keyedRequest();
        const slow = executed(await engine.begin(request));
        clock.nowMs += leaseMs;
        const takeover = executed(await engine.begin(request));
        await takeover.release();
        const error = await slow
          .commit(async () => response(201, 'slow'))
          .then(
            () => undefined,
            (rejection: unknown) => rejection,
          );
        expect(error).toBeInstanceOf(IdempotencyLeaseLostError);
        const lost = error as IdempotencyLeaseLostError;
        if (capabilities.transactional) {
          expect(lost.writes).toBe('rolled-back');
        } else {
          expect(engine.guarantee).toBe('at-least-once-per-lease');
          expect(lost.writes).toBe('may-be-kept');
          expect(lost.message).not.toMatch(/nothing .*was kept/);
        }
      });
    });

    describe('one tenant could fill the store (no per-tenant bound, no response size bound)', () => {
      const limited = (overrides: { maxRecordsPerScope?: number; maxStoredResponseBytes?: number }) =>
        createIdempotencyEngine<Tx>({
          store: harness.store,
          leaseMs,
          retentionMs,
          now: () => clock.nowMs,
          ...overrides,
        });

      it('refuses a new key beyond maxRecordsPerScope with 429 and Retry-After; held keys still replay', async () => {
        const bounded = limited({ maxRecordsPerScope: 3 });
        const held = Array.from({ length: 3 }, () => keyedRequest({ scope: 'flooder' }));
        for (const request of held) {
          await executed(await bounded.begin(request)).commit(async () => response(201, 'kept'));
        }
        const refused = await bounded.begin(keyedRequest({ scope: 'flooder' })).then(
          () => undefined,
          (rejection: unknown) => rejection,
        );
        expect(refused).toBeInstanceOf(IdempotencyScopeFullError);
        expect(refused).toMatchObject({ status: 429, headers: { 'retry-after': '60' } });
        // What the tenant holds still replays; another tenant is untouched.
        for (const request of held) expect(await replayedBody(bounded.begin(request))).toBe('kept');
        expect((await bounded.begin(keyedRequest({ scope: 'quiet' }))).outcome).toBe('executed');
        // A failed run's released record still counts (its id is kept), and is taken over freely.
        clock.nowMs += retentionMs;
        if (capabilities.expiry === 'reaper') await harness.store.reap(clock.nowMs, 100);
        const fresh = executed(await bounded.begin(keyedRequest({ scope: 'flooder' })));
        await fresh.release();
        expect((await bounded.begin(keyedRequest({ scope: 'flooder' }))).outcome).toBe('executed');
        expect((await bounded.begin(keyedRequest({ scope: 'flooder' }))).outcome).toBe('executed');
        await expect(bounded.begin(keyedRequest({ scope: 'flooder' }))).rejects.toBeInstanceOf(
          IdempotencyScopeFullError,
        );
      });

      it('counts a record written while the bound was off once a bounded claim takes it over (expired or lapsed)', async () => {
        const unbounded = limited({});
        const bounded = limited({ maxRecordsPerScope: 2 });
        const expiredKey = keyedRequest({ scope: 'adopter' });
        const lapsedKey = keyedRequest({ scope: 'adopter' });
        await executed(await unbounded.begin(expiredKey)).commit(async () => response(201, 'old'));
        clock.nowMs += retentionMs;
        // Left by a run that never settled, while the bound was off: its lease lapses.
        executed(await unbounded.begin(lapsedKey));
        clock.nowMs += leaseMs;
        // Both are taken over by bounded claims (a new record, and the same record): both count.
        executed(await bounded.begin(expiredKey));
        executed(await bounded.begin(lapsedKey));
        await expect(bounded.begin(keyedRequest({ scope: 'adopter' }))).rejects.toBeInstanceOf(
          IdempotencyScopeFullError,
        );
      });

      it('lets exactly maxRecordsPerScope of 20 concurrent new keys of one scope execute (PostgreSQL: at most that many more)', async () => {
        const bounded = limited({ maxRecordsPerScope: 5 });
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, () => bounded.begin(keyedRequest({ scope: 'racer' }))),
        );
        const executedCount = results.filter(
          (r) => r.status === 'fulfilled' && r.value.outcome === 'executed',
        ).length;
        const full = results.filter(
          (r) => r.status === 'rejected' && r.reason instanceof IdempotencyScopeFullError,
        );
        expect(executedCount + full.length).toBe(20);
        expect(executedCount).toBeGreaterThanOrEqual(5);
        expect(executedCount).toBeLessThanOrEqual(capabilities.exactScopeBound === false ? 15 : 5);
      });

      it('refuses to store an answer over maxStoredResponseBytes: a 500 problem, writes rolled back, key released', async () => {
        const bounded = limited({ maxStoredResponseBytes: 8 });
        const request = keyedRequest();
        const first = executed(await bounded.begin(request));
        const error = await first
          .commit(async (tx) => {
            if (harness.business) await harness.business.insert(tx, 'too-large');
            return response(201, 'nine bytes');
          })
          .then(
            () => undefined,
            (rejection: unknown) => rejection,
          );
        expect(error).toBeInstanceOf(StoredResponseTooLargeError);
        expect(error).toMatchObject({ status: 500 });
        if (harness.business) expect(await harness.business.count()).toBe(0);
        // Released under the same id; an answer within the bound is stored and replayed.
        const retry = executed(await bounded.begin(request));
        expect(retry.recordId).toBe(first.recordId);
        await expect(retry.complete(response(201, 'too large'))).rejects.toBeInstanceOf(
          StoredResponseTooLargeError,
        );
        const third = executed(await bounded.begin(request));
        await third.commit(async () => response(201, 'eight b.'));
        expect(await replayedBody(bounded.begin(request))).toBe('eight b.');
      });
    });

    it('never hands a lapsed lease to a request with a different body', async () => {
      const request = keyedRequest();
      executed(await engine.begin(request));
      clock.nowMs += leaseMs;
      expect((await engine.begin({ ...request, body: { sku: 'other' } })).outcome).toBe('mismatch');
    });

    it('replays the exact status, headers and body of the first answer', async () => {
      const request = keyedRequest();
      const first = executed(await engine.begin(request));
      const original: StoredResponse = {
        status: 201,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          location: '/orders/o-1',
          etag: '"v1"',
          link: '</orders/o-1/items>; rel="items"',
        },
        body: encoder.encode('{"id":"o-1","total":"12.50"}'),
      };
      await first.commit(async () => original);
      clock.nowMs += leaseMs * 3;
      const replay = await engine.begin(request);
      expect(replay).toEqual({ outcome: 'replayed', recordId: first.recordId, response: original });
    });

    it('refuses a reused key with a different body and keeps the original answer', async () => {
      const request = keyedRequest();
      await executed(await engine.begin(request)).commit(async () => response(201, 'original'));
      expect((await engine.begin({ ...request, body: { sku: 'B-2', qty: 9 } })).outcome).toBe('mismatch');
      expect((await engine.begin({ ...request, path: '/orders/elsewhere' })).outcome).toBe('mismatch');
      expect(await replayedBody(engine.begin(request))).toBe('original');
    });

    it('treats a key as new once its retention has ended, under a new record id', async () => {
      const request = keyedRequest();
      const first = executed(await engine.begin(request));
      await first.commit(async () => response(201, 'first'));
      clock.nowMs += retentionMs - 1;
      expect(await replayedBody(engine.begin(request))).toBe('first');
      clock.nowMs += 1;
      const again = executed(await engine.begin({ ...request, body: { sku: 'new use of the key' } }));
      expect(again.recordId).not.toBe(first.recordId);
      await again.commit(async () => response(201, 'second'));
      expect(await replayedBody(engine.begin({ ...request, body: { sku: 'new use of the key' } }))).toBe(
        'second',
      );
    });

    it('releases a claim so a retry executes, and ignores a release by a token that lost it', async () => {
      const request = keyedRequest();
      const first = executed(await engine.begin(request));
      await harness.store.release(first.scopeKey, randomUUID());
      expect((await engine.begin(request)).outcome).toBe('in_use');
      await first.release();
      const retry = executed(await engine.begin(request));
      await retry.commit(async () => response(201, 'done'));
      // A completed record is not a claim: releasing it, even with its own token, changes nothing.
      await harness.store.release(retry.scopeKey, retry.token);
      expect(await replayedBody(engine.begin(request))).toBe('done');
    });

    it('keeps one key apart across scopes, methods and routes', async () => {
      const key = `key-${randomUUID()}`;
      const variants: IdempotentRequest[] = [
        keyedRequest({ key, scope: 'tenant-a' }),
        keyedRequest({ key, scope: 'tenant-b' }),
        keyedRequest({ key, scope: 'tenant-a', method: 'PUT' }),
        keyedRequest({ key, scope: 'tenant-a', route: '/users', path: '/users' }),
      ];
      for (const [index, request] of variants.entries()) {
        await executed(await engine.begin(request)).commit(async () => response(201, `answer ${index}`));
      }
      for (const [index, request] of variants.entries()) {
        expect(await replayedBody(engine.begin(request))).toBe(`answer ${index}`);
      }
    });

    it('round-trips a 1 MiB body byte for byte', async () => {
      const body = new Uint8Array(randomBytes(1024 * 1024));
      const request = keyedRequest();
      await executed(await engine.begin(request)).commit(async () => ({ status: 200, headers: {}, body }));
      const replay = await engine.begin(request);
      expect(replay.outcome).toBe('replayed');
      const replayed = replay.outcome === 'replayed' ? replay.response.body : new Uint8Array(0);
      expect(replayed.byteLength).toBe(body.byteLength);
      expect(Buffer.compare(replayed, body)).toBe(0);
    });

    it('round-trips binary (every byte value), UTF-8 and empty bodies exactly', async () => {
      const bodies = [
        Uint8Array.from({ length: 512 }, (_, index) => (index * 7 + 255) % 256),
        Uint8Array.from({ length: 256 }, (_, index) => 255 - index),
        encoder.encode('🦄 注文を受け付けました 订单 주문 ✓ \u0000 "quoted" \\ end'),
        new Uint8Array(0),
      ];
      expect(new Set(bodies[0])).toHaveProperty('size', 256);
      for (const body of bodies) {
        const request = keyedRequest();
        await executed(await engine.begin(request)).commit(async () => ({ status: 200, headers: {}, body }));
        const replay = await engine.begin(request);
        expect(replay.outcome === 'replayed' && replay.response.body).toEqual(body);
      }
    });

    it('serves a keyed POST through the Fastify adapter once and replays it', async () => {
      const app = Fastify();
      app.setErrorHandler(problemErrorHandler);
      let executions = 0;
      await app.register(idempotency<Tx>, { engine, scope: () => 'tenant-a' });
      app.post('/orders', { config: { idempotency: 'required' } }, async (_request, reply) =>
        reply.idempotent<Tx>(async (tx) => {
          executions++;
          if (harness.business) await harness.business.insert(tx, `order-${executions}`);
          return { status: 201, headers: { location: '/orders/1' }, body: { id: '1', note: '✓' } };
        }),
      );
      const post = () =>
        app.inject({
          method: 'POST',
          url: '/orders',
          headers: { 'idempotency-key': 'fastify-key' },
          payload: { sku: 'A' },
        });
      const first = await post();
      const second = await post();
      await app.close();
      expect(first.statusCode).toBe(201);
      expect(second.statusCode).toBe(201);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.headers.location).toBe('/orders/1');
      expect(second.body).toBe(first.body);
      expect(executions).toBe(1);
      if (harness.business) expect(await harness.business.count()).toBe(1);
    });

    if (capabilities.expiry === 'reaper') {
      it('reaps expired records in bounded batches and leaves live ones alone', async () => {
        const startMs = clock.nowMs;
        for (let index = 0; index < 25; index++) {
          const execution = executed(await engine.begin(keyedRequest()));
          // Completed and merely claimed records both expire when their retention ends.
          if (index % 5 !== 0) await execution.commit(async () => response(201, `old ${index}`));
        }
        clock.nowMs = startMs + retentionMs / 2;
        const live = Array.from({ length: 3 }, () => keyedRequest());
        for (const request of live) {
          await executed(await engine.begin(request)).commit(async () => response(201, 'live'));
        }
        const reapAtMs = startMs + retentionMs;
        const batches = [];
        for (let batch = 0; batch < 4; batch++) batches.push(await harness.store.reap(reapAtMs, 10));
        expect(batches).toEqual([10, 10, 5, 0]);
        clock.nowMs = reapAtMs;
        for (const request of live) expect(await replayedBody(engine.begin(request))).toBe('live');
      });
    } else {
      it('sets a TTL of at most the retention on claimed and completed records, so no reaper is needed', async () => {
        const request = keyedRequest();
        const execution = executed(await engine.begin(request));
        const claimedTtlMs = await harness.ttlMs!(execution.scopeKey);
        expect(claimedTtlMs).toBeGreaterThan(0);
        expect(claimedTtlMs).toBeLessThanOrEqual(retentionMs);
        await execution.commit(async () => response(201, 'kept'));
        const completedTtlMs = await harness.ttlMs!(execution.scopeKey);
        expect(completedTtlMs).toBeGreaterThan(0);
        expect(completedTtlMs).toBeLessThanOrEqual(retentionMs);
        expect(await harness.store.reap(clock.nowMs + retentionMs, 10)).toBe(0);
      });
    }

    if (capabilities.transactional) {
      describe('transactions', () => {
        it('commits the business rows and the stored response together', async () => {
          const request = keyedRequest();
          const execution = executed(await engine.begin(request));
          await execution.commit(async (tx) => {
            await harness.business!.insert(tx, 'order-1');
            return response(201, 'order-1');
          });
          expect(await harness.business!.count()).toBe(1);
          expect(await replayedBody(engine.begin(request))).toBe('order-1');
        });

        it('undoes a fenced completion made inside a transaction that rolls back', async () => {
          const scopeKey = `scope-${randomUUID()}`;
          const claim = claimInput(scopeKey, clock.nowMs);
          await harness.store.claim(claim);
          const completion = {
            scopeKey,
            token: claim.token,
            response: response(201, 'never kept'),
            expiresAtMs: claim.expiresAtMs,
          };
          const failure = new Error('work failed after completing');
          await expect(
            harness.store.transaction!(async (tx) => {
              expect(await harness.store.complete(completion, tx)).toBe(true);
              throw failure;
            }),
          ).rejects.toBe(failure);
          const after = await harness.store.claim({
            ...claimInput(scopeKey, clock.nowMs),
            fingerprint: claim.fingerprint,
          });
          expect(after).toMatchObject({ claimed: false, record: { state: 'claimed', token: claim.token } });
        });

        it('leaves no business row and no record when the work throws', async () => {
          const request = keyedRequest();
          const execution = executed(await engine.begin(request));
          const failure = new Error('handler failed after writing');
          await expect(
            execution.commit(async (tx) => {
              await harness.business!.insert(tx, 'order-1');
              throw failure;
            }),
          ).rejects.toBe(failure);
          expect(await harness.business!.count()).toBe(0);
          // The claim is gone, not merely leased: the retry executes at once.
          expect((await engine.begin(request)).outcome).toBe('executed');
        });

        it('rolls back the writes of a 5xx answer and lets the retry execute', async () => {
          const request = keyedRequest();
          const execution = executed(await engine.begin(request));
          const answer = await execution.commit(async (tx) => {
            await harness.business!.insert(tx, 'order-1');
            return response(503, 'downstream unavailable');
          });
          expect(answer.status).toBe(503);
          expect(await harness.business!.count()).toBe(0);
          expect((await engine.begin(request)).outcome).toBe('executed');
        });

        it('rolls back the writes of a request whose lease was taken over', async () => {
          const request = keyedRequest();
          const slow = executed(await engine.begin(request));
          clock.nowMs += leaseMs;
          const retry = executed(await engine.begin(request));
          await expect(
            slow.commit(async (tx) => {
              await harness.business!.insert(tx, 'order-from-slow');
              return response(201, 'slow');
            }),
          ).rejects.toBeInstanceOf(IdempotencyLeaseLostError);
          expect(await harness.business!.count()).toBe(0);
          await retry.commit(async (tx) => {
            await harness.business!.insert(tx, 'order-from-retry');
            return response(201, 'retry');
          });
          expect(await harness.business!.count()).toBe(1);
        });
      });
    }

    const unavailable = factory.unavailable;
    if (unavailable !== undefined) {
      describe('when the store is down', () => {
        it('rejects begin with a 503 IdempotencyStoreUnavailableError carrying Retry-After', async () => {
          const down = await unavailable();
          try {
            const downEngine = createIdempotencyEngine<Tx>({ store: down.store, now: () => clock.nowMs });
            const error = await downEngine.begin(keyedRequest()).then(
              () => undefined,
              (rejection: unknown) => rejection,
            );
            expect(error).toBeInstanceOf(IdempotencyStoreUnavailableError);
            expect(error).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
          } finally {
            await down.cleanup();
          }
        });

        it('answers a keyed POST with a 503 problem and never runs the handler', async () => {
          const down = await unavailable();
          const app = Fastify();
          try {
            app.setErrorHandler(problemErrorHandler);
            let executions = 0;
            await app.register(idempotency<Tx>, { store: down.store, scope: () => 'tenant-a' });
            app.post('/orders', { config: { idempotency: 'required' } }, async (_request, reply) =>
              reply.idempotent(async () => {
                executions++;
                return { status: 201, body: { id: '1' } };
              }),
            );
            const answer = await app.inject({
              method: 'POST',
              url: '/orders',
              headers: { 'idempotency-key': 'key-1' },
              payload: { sku: 'A' },
            });
            expect(answer.statusCode).toBe(503);
            expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
            expect(answer.headers['retry-after']).toBe('1');
            expect(answer.json()).toMatchObject({
              status: 503,
              type: 'urn:retrysafe:problem:idempotency-store-unavailable',
            });
            expect(executions).toBe(0);
          } finally {
            await app.close();
            await down.cleanup();
          }
        });
      });
    }
  });
}

function keyedRequest(overrides: Partial<IdempotentRequest> = {}): IdempotentRequest {
  return {
    scope: 'tenant-a',
    method: 'POST',
    route: '/orders',
    path: '/orders',
    key: `key-${randomUUID()}`,
    body: { sku: 'A-1', qty: 1 },
    ...overrides,
  };
}

function claimInput(scopeKey: string, nowMs: number): ClaimInput {
  return {
    scopeKey,
    fingerprint: `fp-${randomUUID()}`,
    token: randomUUID(),
    recordId: randomUUID(),
    nowMs,
    leaseExpiresAtMs: nowMs + leaseMs,
    expiresAtMs: nowMs + retentionMs,
  };
}

function response(status: number, text: string): StoredResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: encoder.encode(text) };
}

function executed<Tx>(result: BeginResult<Tx> | undefined): Execution<Tx> {
  if (result?.outcome !== 'executed')
    throw new Error(`expected the request to execute, got ${result?.outcome}`);
  return result.execution;
}

async function replayedBody<Tx>(pending: Promise<BeginResult<Tx>>): Promise<string> {
  const result = await pending;
  if (result.outcome !== 'replayed') throw new Error(`expected a replay, got ${result.outcome}`);
  return new TextDecoder().decode(result.response.body);
}
