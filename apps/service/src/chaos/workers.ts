// The callers of a chaos run: concurrent workers that place orders through `retrysafe/client`
// and behave as the Guarantees ask of a caller: one key per logical order, kept until it settles.

import type { ClientError, ErrorKind } from 'retrysafe/client';
import { createClient } from 'retrysafe/client';
import { injectedFaultType } from '../test-hooks.js';

export interface WorkerOptions {
  baseUrl: string;
  token: string;
  runId: string;
  workers: number;
  /** Logical orders to place in all (the run may end sooner at `deadlineAtMs`). */
  orders: number;
  /** Asked before each new logical order: false once time is up or the run was interrupted. */
  keepGoing: () => boolean;
  timeoutMs: number;
  /** Calls (each with the client's own retries) per logical order before its caller gives up. */
  maxCalls: number;
  /**
   * A share of orders whose first request is held inside its transaction (the test hook
   * `x-test-delay-after-writes-ms`) for `holdMs`, past its lease, while a second caller with the
   * same key and body starts `secondCallerAfterMs` later and takes the key over.
   */
  leaseOverrun?: { rate: number; holdMs: number; secondCallerAfterMs: number };
  /**
   * A share of callers that give up for good at the first 503 they are answered (the client's
   * retries stop there, and they never call again): checkouts the completer must finish.
   */
  abandonRate?: number;
  onSettled?: (done: number) => void;
}

/** What the held first request of a lease-overrun order was told. */
export type HeldRunOutcome =
  | { kind: 'created'; orderId: string }
  /** 409: its lease had been taken over before it could settle. */
  | { kind: 'lease-lost' }
  | { kind: 'failed'; status: number | undefined; errorKind: ErrorKind };

/** How one logical order ended for its caller. */
export type CallerOutcome =
  /** A 201 (first or replayed) naming the order. */
  | { kind: 'created'; orderId: string }
  /** The call failed for good with an answer retrying cannot change (a 4xx, a bad response). */
  | { kind: 'refused'; status: number | undefined; errorKind: ErrorKind }
  /** Gave up without knowing; `sent` says whether the server may have acted. */
  | { kind: 'unknown'; sent: 'no' | 'maybe' | 'yes'; errorKind: ErrorKind };

export interface LogicalOrder {
  index: number;
  sku: string;
  idempotencyKey: string;
  outcome: CallerOutcome;
  /** HTTP attempts over all calls. */
  attempts: number;
  replayed: boolean;
  /** Set for a lease-overrun order: the answer to its held first request. */
  heldRun?: HeldRunOutcome;
  /** Set when its caller gave up at a 503 (outcome `unknown`, sent `maybe`). */
  abandoned?: boolean;
}

export interface WorkerCounts {
  /** Failed attempts the client saw, by kind (`server`, `timeout`, `network`, `in_use`, …). */
  failedAttempts: Partial<Record<ErrorKind, number>>;
  /** 5xx answers the test hooks injected, by status. */
  injectedServerErrors: Record<string, number>;
  /** Every other 5xx answer, by status: a 500 among them is a bug. */
  otherServerErrors: Record<string, number>;
  /** 503s of a checkout whose provider failed or timed out (a provider fault, expected under chaos). */
  paymentsUnavailable: number;
  /** Calls repeated by the caller with the same key after the client gave up. */
  callerRepeats: number;
  /** First requests held past their lease (lease-overrun orders), … */
  leaseOverruns: number;
  /** … and of those, how many were answered 409 because another request had taken the key over. */
  leaseTakeovers: number;
}

/** The problem type of a checkout's 503 when the payment provider failed or timed out. */
const paymentsUnavailableType = 'payments-unavailable';

/** Outcomes a caller keeps retrying with the same key: the order may or may not exist yet. */
const unsettledKinds = new Set<ErrorKind>(['server', 'timeout', 'network', 'in_use', 'rate_limited']);

/** The 409 a request gets when its lease was taken over before it settled (not a claim refused). */
function isLeaseLost(error: ClientError): boolean {
  return error.status === 409 && /took longer than its lease/.test(error.problem?.detail ?? '');
}

/** Every order of a run carries its logical order's SKU, so the audit can find and count it. */
export function skuPrefix(runId: string): string {
  return `chaos-${runId}-`;
}

function skuFor(runId: string, index: number): string {
  return `${skuPrefix(runId)}${index}`;
}

export async function placeOrders(
  options: WorkerOptions,
): Promise<{ orders: LogicalOrder[]; counts: WorkerCounts }> {
  const counts: WorkerCounts = {
    failedAttempts: {},
    injectedServerErrors: {},
    otherServerErrors: {},
    paymentsUnavailable: 0,
    callerRepeats: 0,
    leaseOverruns: 0,
    leaseTakeovers: 0,
  };
  const countFailure = (error: ClientError) => {
    counts.failedAttempts[error.kind] = (counts.failedAttempts[error.kind] ?? 0) + 1;
    if (error.status === 503 && error.problem?.type?.endsWith(`:${paymentsUnavailableType}`) === true) {
      counts.paymentsUnavailable++;
    } else if (error.status !== undefined && error.status >= 500) {
      const injected = error.problem?.type?.endsWith(`:${injectedFaultType}`) === true;
      const bucket = injected ? counts.injectedServerErrors : counts.otherServerErrors;
      bucket[error.status] = (bucket[error.status] ?? 0) + 1;
    }
  };
  const clientOptions = {
    baseUrl: options.baseUrl,
    token: options.token,
    timeoutMs: options.timeoutMs,
    deadlineMs: options.timeoutMs * 8,
    retry: { maxAttempts: 6, baseDelayMs: 50, maxDelayMs: 1_000 },
  };
  const client = createClient({ ...clientOptions, onRetry: (info) => countFailure(info.error) });
  const overrun = options.leaseOverrun;
  // The held request's caller waits it out: one attempt, a timeout past the hold.
  const heldClient = overrun
    ? createClient({
        baseUrl: options.baseUrl,
        token: options.token,
        timeoutMs: overrun.holdMs + options.timeoutMs * 2,
        retry: { maxAttempts: 1 },
      })
    : undefined;

  async function heldRun(body: unknown, idempotencyKey: string): Promise<HeldRunOutcome> {
    counts.leaseOverruns++;
    const result = await heldClient!.post<{ id: string }>('/orders', body, {
      idempotencyKey,
      headers: { 'x-test-delay-after-writes-ms': String(overrun!.holdMs) },
    });
    if (result.ok) return { kind: 'created', orderId: result.data.id };
    if (isLeaseLost(result.error)) {
      counts.leaseTakeovers++;
      return { kind: 'lease-lost' };
    }
    countFailure(result.error);
    return { kind: 'failed', status: result.error.status, errorKind: result.error.kind };
  }

  const orders: LogicalOrder[] = [];
  let next = 0;
  async function placeOne(index: number): Promise<LogicalOrder> {
    const sku = skuFor(options.runId, index);
    const idempotencyKey = `${options.runId}-${index}`;
    const body = { items: [{ sku, quantity: 1 + (index % 3), unitPriceCents: 250 }], currency: 'EUR' };
    if (options.abandonRate !== undefined && Math.random() < options.abandonRate) {
      return abandonAtFirst503(index, sku, idempotencyKey, body);
    }
    if (overrun && Math.random() < overrun.rate) {
      const held = heldRun(body, idempotencyKey);
      await new Promise((resolve) => setTimeout(resolve, overrun.secondCallerAfterMs));
      const order = await callUntilSettled(index, sku, idempotencyKey, body);
      return { ...order, heldRun: await held };
    }
    return callUntilSettled(index, sku, idempotencyKey, body);
  }

  /** One call whose retries stop at the first 503; then its caller is gone for good. */
  async function abandonAtFirst503(
    index: number,
    sku: string,
    idempotencyKey: string,
    body: unknown,
  ): Promise<LogicalOrder> {
    const giveUp = new AbortController();
    // Its own client, so the retry hook can tell this call's 503 from the others'.
    const impatient = createClient({
      ...clientOptions,
      onRetry: (info) => {
        countFailure(info.error);
        if (info.error.status === 503) giveUp.abort();
      },
    });
    const result = await impatient.post<{ id: string }>('/orders', body, {
      idempotencyKey,
      signal: giveUp.signal,
    });
    if (result.ok) {
      return {
        index,
        sku,
        idempotencyKey,
        outcome: { kind: 'created', orderId: result.data.id },
        attempts: result.attempts,
        replayed: result.replayed,
      };
    }
    const error = result.error;
    if (!giveUp.signal.aborted) countFailure(error);
    if (giveUp.signal.aborted || error.status === 503) {
      return {
        index,
        sku,
        idempotencyKey,
        outcome: { kind: 'unknown', sent: 'maybe', errorKind: 'server' },
        attempts: error.attempts,
        replayed: false,
        abandoned: true,
      };
    }
    if (!unsettledKinds.has(error.kind)) {
      return {
        index,
        sku,
        idempotencyKey,
        outcome: { kind: 'refused', status: error.status, errorKind: error.kind },
        attempts: error.attempts,
        replayed: false,
      };
    }
    // No 503, only timeouts and resets past every retry: this caller goes on like the others.
    counts.callerRepeats++;
    const rest = await callUntilSettled(index, sku, idempotencyKey, body);
    return { ...rest, attempts: rest.attempts + error.attempts };
  }

  async function callUntilSettled(
    index: number,
    sku: string,
    idempotencyKey: string,
    body: unknown,
  ): Promise<LogicalOrder> {
    let attempts = 0;
    let sentMaybe = false;
    let last: ClientError | undefined;
    for (let call = 0; call < options.maxCalls; call++) {
      if (call > 0) {
        counts.callerRepeats++;
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(2_000, (last?.retryAfterMs ?? 200) * call)),
        );
      }
      const result = await client.post<{ id: string }>('/orders', body, { idempotencyKey });
      if (result.ok) {
        return {
          index,
          sku,
          idempotencyKey,
          outcome: { kind: 'created', orderId: result.data.id },
          attempts: attempts + result.attempts,
          replayed: result.replayed,
        };
      }
      last = result.error;
      attempts += last.attempts;
      countFailure(last);
      if (last.sent !== 'no') sentMaybe = true;
      if (!unsettledKinds.has(last.kind)) {
        return {
          index,
          sku,
          idempotencyKey,
          outcome: { kind: 'refused', status: last.status, errorKind: last.kind },
          attempts,
          replayed: false,
        };
      }
    }
    return {
      index,
      sku,
      idempotencyKey,
      outcome: { kind: 'unknown', sent: sentMaybe ? 'maybe' : 'no', errorKind: last!.kind },
      attempts,
      replayed: false,
    };
  }

  async function worker(): Promise<void> {
    while (next < options.orders && options.keepGoing()) {
      const order = await placeOne(next++);
      orders.push(order);
      options.onSettled?.(orders.length);
    }
  }
  await Promise.all(Array.from({ length: options.workers }, worker));
  orders.sort((a, b) => a.index - b.index);
  return { orders, counts };
}
