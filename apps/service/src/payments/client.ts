// A typed client of the payment provider simulator, on `retrysafe/client`: it sends the
// caller's own Idempotency-Key (never a fresh one) and turns every outcome into a result or one
// of two errors — "may have charged, retry with the same key" or "definitively refused".
import { type ClientError, createClient, type Result } from 'retrysafe/client';
import { type PaymentsOperation, PaymentsRejectedError, PaymentsUnavailableError } from './errors.js';
import type { Charge, ChargeInput, ChargePage, PaymentsStats, Refund, RefundInput } from './types.js';

/** Per attempt; the checkout waits this long at most for one charge answer. */
export const defaultPaymentsTimeoutMs = 5_000;
/** One attempt: the caller's step or job already retries with its own bound and backoff. */
export const defaultPaymentsMaxAttempts = 1;
/** Cap of the wait between attempts when `maxAttempts` > 1. */
const maxRetryDelayMs = 2_000;

export interface PaymentsClientOptions {
  /** The simulator's URL, e.g. `sim.url`. */
  baseUrl: string;
  timeoutMs?: number;
  /** Attempts per call, each with the same key. Default 1. */
  maxAttempts?: number;
}

export interface PaymentsClient {
  /** Charges once per key: the same key again answers the first charge (`replayed: true`). */
  charge(input: ChargeInput & { key: string }): Promise<{ charge: Charge; replayed: boolean }>;
  refund(input: RefundInput & { key: string }): Promise<{ refund: Refund; replayed: boolean }>;
  /** undefined when the provider has no such charge. */
  getCharge(id: string): Promise<Charge | undefined>;
  /** Every charge made for `reference`, oldest first (all pages). */
  listCharges(reference: string): Promise<Charge[]>;
  stats(): Promise<PaymentsStats>;
}

/** Pages `listCharges` follows at most (100 charges each): an audit of one reference is small. */
const maxListPages = 100;

export function createPaymentsClient(options: PaymentsClientOptions): PaymentsClient {
  const timeoutMs = options.timeoutMs ?? defaultPaymentsTimeoutMs;
  const maxAttempts = options.maxAttempts ?? defaultPaymentsMaxAttempts;
  const http = createClient({
    baseUrl: options.baseUrl,
    timeoutMs,
    // Room for every attempt and the waits between them, so the deadline never cuts the last one.
    deadlineMs: timeoutMs * maxAttempts + maxRetryDelayMs * (maxAttempts - 1),
    retry: { maxAttempts, maxDelayMs: maxRetryDelayMs },
    // A payment's key is the caller's (derived from its record or job); a missing one is a bug.
    autoIdempotencyKey: false,
  });

  async function write<T>(
    operation: 'charge' | 'refund',
    path: string,
    key: string,
    body: unknown,
    isValid: (value: unknown) => value is T,
  ): Promise<{ value: T; replayed: boolean }> {
    if (typeof key !== 'string' || key === '') throw new TypeError(`${operation}: key is required`);
    const result = await http.post<unknown>(path, body, { idempotencyKey: key });
    if (!result.ok) throw toPaymentsError(operation, result.error);
    if (!isValid(result.data)) {
      // It answered 2xx, so it may well have acted; the same key replays the same answer.
      throw unreadable(operation, key, result.status);
    }
    return { value: result.data, replayed: result.replayed };
  }

  async function read<T>(path: string, query: Record<string, string> = {}): Promise<Result<T>> {
    return http.get<T>(path, { query });
  }

  return {
    async charge({ key, amount, currency, reference }) {
      const { value, replayed } = await write(
        'charge',
        '/charges',
        key,
        { amount, currency, reference },
        isCharge,
      );
      return { charge: value, replayed };
    },
    async refund({ key, charge, amount, reference }) {
      const { value, replayed } = await write(
        'refund',
        '/refunds',
        key,
        { charge, amount, reference },
        isRefund,
      );
      return { refund: value, replayed };
    },
    async getCharge(id) {
      const result = await read<Charge>(`/charges/${encodeURIComponent(id)}`);
      if (!result.ok && result.error.kind === 'not_found') return undefined;
      if (!result.ok) throw toPaymentsError('read', result.error);
      return result.data;
    },
    async listCharges(reference) {
      const charges: Charge[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < maxListPages; page++) {
        const result: Result<ChargePage> = await read<ChargePage>('/charges', {
          reference,
          ...(cursor === null ? {} : { cursor }),
        });
        if (!result.ok) throw toPaymentsError('read', result.error);
        charges.push(...result.data.data);
        cursor = result.data.nextCursor;
        if (cursor === null) return charges;
      }
      throw new Error(`listCharges: more than ${maxListPages} pages of charges for one reference`);
    },
    async stats() {
      const result = await read<PaymentsStats>('/stats');
      if (!result.ok) throw toPaymentsError('read', result.error);
      return result.data;
    },
  };
}

/**
 * The one place that decides what an outcome means for money. Anything that leaves doubt —
 * no answer, a 5xx, a 429, the key still in flight, an answer that cannot be read — is
 * "unavailable, may have charged"; only a readable 4xx refusal is a definitive no.
 */
export function toPaymentsError(
  operation: PaymentsOperation,
  error: ClientError,
): PaymentsUnavailableError | PaymentsRejectedError {
  const details = {
    operation,
    idempotencyKey: error.idempotencyKey,
    providerStatus: error.status,
    providerProblemType: typeof error.problem?.type === 'string' ? error.problem.type : undefined,
  };
  const definitive =
    error.status !== undefined &&
    error.status >= 400 &&
    error.status < 500 &&
    error.status !== 408 &&
    error.kind !== 'in_use' &&
    error.kind !== 'rate_limited' &&
    error.kind !== 'bad_response';
  if (definitive) {
    return new PaymentsRejectedError(sentence(error.message), { ...details, providerStatus: error.status! });
  }
  return new PaymentsUnavailableError(
    sentence(error.message),
    { ...details, mayHaveActed: error.sent !== 'no', retryAfterMs: error.retryAfterMs },
    error.cause,
  );
}

function unreadable(operation: 'charge' | 'refund', key: string, status: number): PaymentsUnavailableError {
  return new PaymentsUnavailableError(`it answered HTTP ${status} without a ${operation} in the body.`, {
    operation,
    idempotencyKey: key,
    providerStatus: status,
    providerProblemType: undefined,
    mayHaveActed: true,
    retryAfterMs: undefined,
  });
}

function sentence(text: string): string {
  return /[.!?]$/.test(text.trim()) ? text.trim() : `${text.trim()}.`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCharge(value: unknown): value is Charge {
  return (
    isRecord(value) &&
    typeof value.id === 'string' &&
    Number.isInteger(value.amount) &&
    typeof value.currency === 'string' &&
    typeof value.reference === 'string' &&
    value.status === 'succeeded'
  );
}

function isRefund(value: unknown): value is Refund {
  return (
    isRecord(value) &&
    typeof value.id === 'string' &&
    typeof value.charge === 'string' &&
    Number.isInteger(value.amount) &&
    value.status === 'succeeded'
  );
}
