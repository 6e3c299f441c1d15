// The payment provider simulator's resources as they travel over HTTP: what the sim answers and
// what its client returns. No server or driver import here, so the client can use it alone.

/** A charge as `POST /charges` and `GET /charges/{id}` answer it. Amounts in minor units (cents). */
export interface Charge {
  id: string;
  amount: number;
  /** ISO 4217 code, three upper-case letters. */
  currency: string;
  /** The caller's own reference (an order id): what audits look charges up by. */
  reference: string;
  status: 'succeeded';
  /** ISO 8601, UTC. */
  createdAt: string;
}

/** A refund of (part of) a charge, in the charge's currency. */
export interface Refund {
  id: string;
  /** The refunded charge's id. */
  charge: string;
  amount: number;
  currency: string;
  reference: string;
  status: 'succeeded';
  createdAt: string;
}

/** Every charge and refund ever made (a replay makes none). */
export interface PaymentsStats {
  charges: number;
  refunds: number;
  /** Sum of every charge's amount, all currencies together. */
  chargedAmount: number;
  refundedAmount: number;
}

export interface ChargeInput {
  amount: number;
  currency: string;
  reference: string;
}

export interface RefundInput {
  charge: string;
  amount: number;
  reference: string;
}

/** One page of `GET /charges`. */
export interface ChargePage {
  data: Charge[];
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}
