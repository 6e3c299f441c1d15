// What every checkout proof does: start the service on a backend against the external provider,
// place an order with a key (and test-hook headers), wait for a log line or a condition with a
// bound, and retry a key until its dead run's lease has lapsed.
import { api, type StartedService, startService } from '../helpers/service.js';
import type { Backend } from './backends.js';

/** Short, so a run killed mid-request frees its key quickly after the restart. */
export const shortLeaseMs = 1_500;

export function orderOf(note: string, unitPriceCents: number) {
  return {
    items: [{ sku: 'checkout-proof', quantity: 1, unitPriceCents }],
    currency: 'EUR',
    note,
  };
}

export type Answer = Awaited<ReturnType<ReturnType<typeof api>>>;

export async function startCheckoutService(
  backend: Backend,
  paymentsUrl: string,
  env: Record<string, string> = {},
): Promise<StartedService> {
  return startService({
    ...backend.serviceDatabase,
    env: { PAYMENTS_URL: paymentsUrl, IDEMPOTENCY_LEASE_MS: String(shortLeaseMs), ...env },
  });
}

export function postOrder(
  service: StartedService,
  key: string,
  order: ReturnType<typeof orderOf>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return api(service.url)('/orders', {
    method: 'POST',
    body: order,
    headers: { 'idempotency-key': key, ...headers },
  });
}

/** Polls `predicate` every 50 ms, at most `attempts` times, then fails naming `what`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  attempts = 400,
): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Waits until the service logged `text` for the request carrying `key`'s note, or anywhere. */
export function waitForLog(service: StartedService, text: string, times = 1): Promise<void> {
  return waitFor(
    () => service.logs.filter((line) => line.includes(text)).length >= times,
    `the log line "${text}" ×${times}`,
  );
}

/**
 * The client's retry with the same key: repeated while the key is still held (409, the dead
 * run's lease has not lapsed yet), bounded; returns the first other answer.
 */
export async function retryUntilSettled(
  service: StartedService,
  key: string,
  order: ReturnType<typeof orderOf>,
): Promise<Answer> {
  let answer: Answer | undefined;
  await waitFor(async () => {
    answer = await postOrder(service, key, order);
    return answer.status !== 409;
  }, `key ${key} to be free (its lease to lapse)`);
  return answer!;
}
