// The repository contract suite: one set of cases the service's data layer must pass on every
// database (like the store contract suite), run against the real SQLite and PostgreSQL.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiKeyRecord, ServiceData } from '../../src/data/types.js';
import {
  buildOrder,
  type PendingChange,
  paidOrder,
  replacedOrder,
  type StoredOrder,
  withPendingChange,
} from '../../src/domain/orders.js';
import type { StoredUser } from '../../src/domain/users.js';

export interface DataFactory<Tx> {
  /** A fresh, empty, migrated data layer (its own file or database). */
  open(): Promise<ServiceData<Tx>>;
}

function user(tenant: string, overrides: Partial<StoredUser> = {}): StoredUser {
  const id = overrides.id ?? `u-${randomUUID()}`;
  return {
    tenant,
    id,
    username: `name-${id}`,
    email: `${id}@example.test`,
    age: 30,
    bio: null,
    interests: ['chess', 'ü'],
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    etag: '"1"',
    ...overrides,
  };
}

function order(tenant: string, overrides: Partial<StoredOrder> = {}): StoredOrder {
  const placed = buildOrder(
    tenant,
    {
      items: [{ sku: 'A-1', quantity: 2, unitPriceCents: 1250 }],
      currency: 'EUR',
      note: 'leave at the door',
    },
    `o-${randomUUID()}`,
    `${randomUUID()}:charge`,
  );
  return { ...placed, ...overrides };
}

export function describeDataContract<Tx>(name: string, factory: DataFactory<Tx>) {
  describe(`${name} repositories`, () => {
    let data: ServiceData<Tx>;
    const tenant = 'tenant-a';

    beforeEach(async () => {
      data = await factory.open();
    });

    afterEach(async () => {
      await data.close();
    });

    describe('users', () => {
      it('inserts a user and reads it back exactly', async () => {
        const alice = user(tenant);
        expect(await data.transaction((tx) => data.users.insert(tx, alice))).toEqual({ ok: true });
        expect(await data.users.get(tenant, alice.id)).toMatchObject(alice);
        expect(await data.users.get('tenant-b', alice.id)).toBeUndefined();
      });

      it('refuses a taken id and a taken username (with the owner of the name)', async () => {
        const alice = user(tenant);
        await data.transaction((tx) => data.users.insert(tx, alice));
        const sameId = user(tenant, { id: alice.id, username: 'someone-else' });
        expect(await data.transaction((tx) => data.users.insert(tx, sameId))).toEqual({
          ok: false,
          reason: 'id-taken',
        });
        const sameName = user(tenant, { username: alice.username });
        expect(await data.transaction((tx) => data.users.insert(tx, sameName))).toEqual({
          ok: false,
          reason: 'username-taken',
          existingId: alice.id,
        });
        // Another tenant may use both.
        const elsewhere = user('tenant-b', { id: alice.id, username: alice.username });
        expect(await data.transaction((tx) => data.users.insert(tx, elsewhere))).toEqual({ ok: true });
      });

      it('replaces only while the ETag still matches (compare-and-set), and refuses a taken username', async () => {
        const alice = user(tenant);
        const bob = user(tenant);
        await data.transaction(async (tx) => {
          await data.users.insert(tx, alice);
          await data.users.insert(tx, bob);
        });
        const renamed = { ...alice, username: 'alice-2', version: 2, etag: '"2"' };
        expect(await data.transaction((tx) => data.users.replace(tx, renamed, '"1"'))).toEqual({ ok: true });
        expect(await data.users.get(tenant, alice.id)).toMatchObject({ username: 'alice-2', etag: '"2"' });
        expect(
          await data.transaction((tx) => data.users.replace(tx, { ...renamed, etag: '"3"' }, '"1"')),
        ).toEqual({
          ok: false,
          reason: 'stale',
        });
        const clash = { ...renamed, username: bob.username, etag: '"3"' };
        expect(await data.transaction((tx) => data.users.replace(tx, clash, '"2"'))).toEqual({
          ok: false,
          reason: 'username-taken',
          existingId: bob.id,
        });
        expect(await data.users.get(tenant, alice.id)).toMatchObject({ username: 'alice-2', etag: '"2"' });
      });

      it('deletes only while the ETag still matches', async () => {
        const alice = user(tenant);
        await data.transaction((tx) => data.users.insert(tx, alice));
        expect(await data.transaction((tx) => data.users.delete(tx, tenant, alice.id, '"stale"'))).toBe(
          false,
        );
        expect(await data.users.get(tenant, alice.id)).toBeDefined();
        expect(await data.transaction((tx) => data.users.delete(tx, tenant, alice.id, '"1"'))).toBe(true);
        expect(await data.users.get(tenant, alice.id)).toBeUndefined();
      });

      it('lists users in pages, in insertion order, per tenant', async () => {
        const users = Array.from({ length: 5 }, () => user(tenant));
        await data.transaction(async (tx) => {
          for (const each of users) await data.users.insert(tx, each);
          await data.users.insert(tx, user('tenant-b'));
        });
        const first = await data.users.list(tenant, 0, 2);
        expect(first.items.map((each) => each.id)).toEqual(users.slice(0, 2).map((each) => each.id));
        expect(first.nextAfterSeq).toBeDefined();
        const second = await data.users.list(tenant, first.nextAfterSeq!, 2);
        const third = await data.users.list(tenant, second.nextAfterSeq!, 2);
        expect([...second.items, ...third.items].map((each) => each.id)).toEqual(
          users.slice(2).map((each) => each.id),
        );
        expect(third.nextAfterSeq).toBeUndefined();
      });
    });

    describe('orders', () => {
      it('inserts an order once: the same id again returns the first row, unchanged', async () => {
        const first = order(tenant);
        expect(await data.transaction((tx) => data.orders.insertOnce(tx, first))).toMatchObject(first);
        const again = { ...first, note: 'a second run', totalCents: 1 };
        expect(await data.transaction((tx) => data.orders.insertOnce(tx, again))).toMatchObject(first);
        expect(await data.orders.get(tenant, first.id)).toMatchObject(first);
        expect(await data.orders.count(tenant)).toBe(1);
      });

      it('gets, lists and counts per tenant', async () => {
        const orders = Array.from({ length: 3 }, () => order(tenant));
        await data.transaction(async (tx) => {
          for (const each of orders) await data.orders.insertOnce(tx, each);
          await data.orders.insertOnce(tx, order('tenant-b'));
        });
        expect(await data.orders.count(tenant)).toBe(3);
        expect(await data.orders.get('tenant-b', orders[0]!.id)).toBeUndefined();
        const page = await data.orders.list(tenant, 0, 2);
        expect(page.items.map((each) => each.id)).toEqual(orders.slice(0, 2).map((each) => each.id));
        const rest = await data.orders.list(tenant, page.nextAfterSeq!, 2);
        expect(rest.items.map((each) => each.id)).toEqual([orders[2]!.id]);
        expect(rest.nextAfterSeq).toBeUndefined();
      });
      it('marks an order paid only from the ETag it read, starts one shipment and records each payment once', async () => {
        const placed = order(tenant);
        await data.transaction((tx) => data.orders.insertOnce(tx, placed));
        const paid = paidOrder(placed, 'ch_1', placed.totalCents);
        expect(await data.transaction((tx) => data.orders.update(tx, paid, placed.etag))).toBe(true);
        // A second finisher read the pending order too: its compare-and-set finds the ETag moved.
        expect(await data.transaction((tx) => data.orders.update(tx, paid, placed.etag))).toBe(false);
        const payment = {
          key: placed.chargeKey!,
          tenant,
          orderId: placed.id,
          kind: 'charge' as const,
          providerId: 'ch_1',
          amountCents: placed.totalCents,
          refundsCharge: null,
          createdAt: paid.paidAt!,
        };
        const shipped = await data.transaction(async (tx) => [
          await data.orders.startShipment(tx, tenant, placed.id, paid.paidAt!),
          await data.orders.startShipment(tx, tenant, placed.id, paid.paidAt!),
          await data.orders.recordPayment(tx, payment),
          await data.orders.recordPayment(tx, { ...payment, amountCents: 1 }),
        ]);
        expect(shipped.slice(0, 2)).toEqual([true, false]);
        expect(await data.orders.payments(tenant, placed.id)).toEqual([payment]);
        expect(await data.orders.get(tenant, placed.id)).toMatchObject({
          status: 'paid',
          chargeId: 'ch_1',
          paidCents: placed.totalCents,
          shipment: 'pending',
          etag: paid.etag,
        });
      });
      it('keeps a pending change on the order (a new ETag) until it is applied, and reads payments inside a transaction', async () => {
        const placed = order(tenant);
        await data.transaction((tx) => data.orders.insertOnce(tx, placed));
        const paid = paidOrder(placed, 'ch_1', placed.totalCents);
        await data.transaction((tx) => data.orders.update(tx, paid, placed.etag));
        const change: PendingChange = {
          version: paid.version,
          replacesEtag: paid.etag,
          bodyDigest: 'digest-1',
          input: { items: [{ sku: 'A-1', quantity: 3, unitPriceCents: 1250 }], currency: 'EUR' },
          movements: [{ kind: 'charge', key: `${paid.id}:v1:charge`, amountCents: 1250 }],
          reservedAt: '2026-01-01T00:00:00.000Z',
        };
        const reserved = withPendingChange(paid, change);
        expect(reserved.etag).not.toBe(paid.etag);
        expect(await data.transaction((tx) => data.orders.update(tx, reserved, paid.etag))).toBe(true);
        // A second PUT of the same version compares against the ETag the reservation replaced.
        expect(await data.transaction((tx) => data.orders.update(tx, reserved, paid.etag))).toBe(false);
        expect(await data.orders.get(tenant, paid.id)).toMatchObject({
          pendingChange: change,
          etag: reserved.etag,
          version: 1,
          totalCents: 2500,
        });
        const payment = {
          key: `${paid.id}:v1:charge`,
          tenant,
          orderId: paid.id,
          kind: 'charge' as const,
          providerId: 'ch_2',
          amountCents: 1250,
          refundsCharge: null,
          createdAt: '2026-01-01T00:00:01.000Z',
        };
        const applied = replacedOrder(reserved, change);
        const inside = await data.transaction(async (tx) => {
          expect(await data.orders.update(tx, applied, reserved.etag)).toBe(true);
          await data.orders.recordPayment(tx, payment);
          return data.orders.paymentsIn(tx, tenant, paid.id);
        });
        expect(inside).toEqual([payment]);
        expect(await data.orders.get(tenant, paid.id)).toMatchObject({
          pendingChange: null,
          version: 2,
          totalCents: 3750,
          paidCents: 3750,
          replacedEtag: paid.etag,
          replacedBodyDigest: 'digest-1',
          etag: applied.etag,
        });
      });
    });

    describe('api keys', () => {
      const key = (label: string): ApiKeyRecord => ({
        keyHash: `hash-${randomUUID()}`,
        tenant,
        role: 'writer',
        label,
      });

      it('seeds the demo keys only while no key exists, and the first real key removes them', async () => {
        const demo = [key('demo'), { ...key('demo'), role: 'reader' as const }];
        expect(await data.apiKeys.seedDemoKeys(demo)).toBe(true);
        expect(await data.apiKeys.seedDemoKeys([key('demo')])).toBe(false);
        expect(await data.apiKeys.find(demo[1]!.keyHash)).toEqual(demo[1]);
        const real = key('ci');
        await data.apiKeys.add(real);
        expect(await data.apiKeys.find(real.keyHash)).toEqual(real);
        expect(await data.apiKeys.find(demo[0]!.keyHash)).toBeUndefined();
        expect(await data.apiKeys.seedDemoKeys([key('demo')])).toBe(false);
      });

      it('seeds exactly once when several seeders race', async () => {
        const results = await Promise.all(
          Array.from({ length: 5 }, () => data.apiKeys.seedDemoKeys([key('demo')])),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });

    it('a rolled-back transaction leaves nothing behind', async () => {
      const alice = user(tenant);
      const first = order(tenant);
      const failure = new Error('the handler failed after writing');
      await expect(
        data.transaction(async (tx) => {
          await data.users.insert(tx, alice);
          await data.orders.insertOnce(tx, first);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await data.users.get(tenant, alice.id)).toBeUndefined();
      expect(await data.orders.get(tenant, first.id)).toBeUndefined();
      expect(await data.orders.count(tenant)).toBe(0);
    });
  });
}
