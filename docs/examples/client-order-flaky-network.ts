// README example: place an order over a flaky network. The client sends one Idempotency-Key with
// every attempt, so when the server's answer is lost after it committed, the retry gets the stored
// answer back (`replayed: true`) instead of a second order. Run: main('http://127.0.0.1:3000').
import { createClient, type FetchLike } from 'retrysafe/client';

interface Order {
  id: string;
  note?: string;
  totalCents: number;
}

/** Loses the first answer after the server has acted on it, the way a dropped connection does. */
function flakyFetch(): FetchLike {
  let lost = 0;
  return async (input, init) => {
    const response = await fetch(input, init);
    if (lost === 0 && init.method === 'POST') {
      lost += 1;
      await response.body?.cancel();
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      });
    }
    return response;
  };
}

export async function main(baseUrl: string, log: (line: string) => void = console.log) {
  const client = createClient({
    baseUrl,
    token: 'demo-writer-a',
    fetch: flakyFetch(),
    deadlineMs: 10_000,
    retry: { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 1_000 },
    onRetry: ({ attempt, error }) =>
      log(`Attempt ${attempt} failed (${error.kind}, sent: ${error.sent}); retrying`),
  });
  const note = `flaky-${crypto.randomUUID()}`;
  const placed = await client.post<Order>('/orders', {
    items: [{ sku: 'coffee-beans', quantity: 2, unitPriceCents: 1_450 }],
    currency: 'EUR',
    note,
  });
  if (!placed.ok) {
    // `sent` says whether the order may exist; a keyed POST can be repeated with the same key later.
    log(`Order not confirmed: ${placed.error.message} (sent: ${placed.error.sent})`);
    return { placed, ordersWithNote: undefined };
  }
  log(`Order ${placed.data.id} placed after ${placed.attempts} attempts (replayed: ${placed.replayed})`);

  const list = await client.get<{ data: Order[] }>('/orders', { query: { limit: 100 } });
  const ordersWithNote = list.ok ? list.data.data.filter((order) => order.note === note).length : undefined;
  log(`Orders with this note on the server: ${ordersWithNote}`);
  return { placed, ordersWithNote };
}
