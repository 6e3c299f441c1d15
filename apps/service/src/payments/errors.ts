// The payments client's errors: one family on the HTTP problem base, so a handler or job that
// lets one through answers with the right status — 503 (retry with the same key) for "may have
// charged", 422 for a definitive refusal — and the caller can also match on the class.
import { ProblemError } from 'retrysafe/http';

export type PaymentsOperation = 'charge' | 'refund' | 'read';

interface PaymentsErrorDetails {
  operation: PaymentsOperation;
  /** The key the call sent (charge and refund): a retry must send this one again. */
  idempotencyKey: string | undefined;
  /** The provider's HTTP status, when it answered. */
  providerStatus: number | undefined;
  /** The provider's problem `type`, when it sent one. */
  providerProblemType: string | undefined;
}

/** Base of the payments client's errors; never thrown itself. */
export class PaymentsError extends ProblemError {
  override name = 'PaymentsError';
  readonly operation: PaymentsOperation;
  readonly idempotencyKey: string | undefined;
  readonly providerStatus: number | undefined;
  readonly providerProblemType: string | undefined;

  constructor(
    problem: {
      status: number;
      type: string;
      title: string;
      detail: string;
      headers?: Record<string, string>;
    },
    details: PaymentsErrorDetails,
    cause?: unknown,
  ) {
    super({ ...problem, ...(cause === undefined ? {} : { cause }) });
    this.operation = details.operation;
    this.idempotencyKey = details.idempotencyKey;
    this.providerStatus = details.providerStatus;
    this.providerProblemType = details.providerProblemType;
  }
}

/**
 * No usable answer: a timeout, a reset connection, a 5xx, a 429, or the same key still in
 * flight (409). The provider may have charged: retry later with the same key (it replays a
 * charge it made) and never treat this as "not charged".
 */
export class PaymentsUnavailableError extends PaymentsError {
  override name = 'PaymentsUnavailableError';
  /** False only when the request provably never left (connection refused): nothing was charged. */
  readonly mayHaveActed: boolean;
  /** How long the provider asked to wait, when it said. */
  readonly retryAfterMs: number | undefined;

  /** @param reason what happened, as a sentence. */
  constructor(
    reason: string,
    details: PaymentsErrorDetails & { mayHaveActed: boolean; retryAfterMs: number | undefined },
    cause?: unknown,
  ) {
    const retryAfterSeconds = Math.max(1, Math.ceil((details.retryAfterMs ?? 1000) / 1000));
    super(
      {
        status: 503,
        type: 'payments-unavailable',
        title: 'Service unavailable',
        detail: `The payment provider gave no usable answer: ${reason} The payment may or may not have been made; retry later with the same Idempotency-Key.`,
        headers: { 'retry-after': String(retryAfterSeconds) },
      },
      details,
      cause,
    );
    this.mayHaveActed = details.mayHaveActed;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The provider answered with a definitive no (a 4xx): nothing was charged or refunded. */
export class PaymentsRejectedError extends PaymentsError {
  override name = 'PaymentsRejectedError';
  constructor(providerDetail: string, details: PaymentsErrorDetails & { providerStatus: number }) {
    super(
      {
        status: 422,
        type: 'payment-rejected',
        title: 'Unprocessable content',
        detail: `The payment provider refused the ${details.operation} (HTTP ${details.providerStatus}): ${providerDetail} Nothing was ${details.operation === 'refund' ? 'refunded' : 'charged'}.`,
      },
      details,
    );
  }
}
