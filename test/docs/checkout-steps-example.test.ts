// Docs that run: the README's checkout-in-steps example (docs/examples/checkout-steps-fastify.ts)
// over real HTTP. A charge that fails once answers 503; the retry with the same key resumes at
// the charge with the same derived key: one order, one charge, one order.paid event.
import { afterEach, describe, expect, it } from 'vitest';
import { startCheckout } from '../../docs/examples/checkout-steps-fastify.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('README example: a checkout in steps', () => {
  it('resumes at the charge after it failed, with the same key, and emits one event', async () => {
    const keys: string[] = [];
    const charged = new Map<string, string>();
    let failNext = true;
    const paid: string[] = [];
    const running = await startCheckout(
      async (key) => {
        keys.push(key);
        if (failNext) {
          failNext = false;
          throw new Error('card processor timed out');
        }
        const chargeId = charged.get(key) ?? `ch_${charged.size + 1}`;
        charged.set(key, chargeId);
        return { chargeId };
      },
      (orderId) => paid.push(orderId),
    );
    close = running.close;
    const post = () =>
      fetch(`${running.url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'checkout-1' },
        body: JSON.stringify({ cents: 1250 }),
      });
    const first = await post();
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('1');
    const second = await post();
    expect(second.status).toBe(201);
    const { id } = (await second.json()) as { id: string };
    const third = await post();
    expect(third.headers.get('idempotent-replayed')).toBe('true');

    expect(running.orders()).toEqual([{ id, cents: 1250, charge: 'ch_1' }]);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[0]).toMatch(/:charge$/);
    for (let i = 0; i < 200 && paid.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(paid).toEqual([id]);
  });
});
