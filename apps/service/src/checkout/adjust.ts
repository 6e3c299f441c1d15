// Replacing a paid order's items (PUT /orders/{id}) and moving the difference at the provider
// exactly once, in three parts shared by the request and the change completer job: (1) the
// change is reserved on the order — a compare-and-set on the ETag it replaces, with its planned
// payments and its completer job — so no second change of that version can move money; (2) the
// charge or refunds are made with keys derived from the order and the version replaced, outside
// any transaction; (3) the change is applied with its payments in the ledger. Each part may run
// again (a retry, a takeover, the completer): none does anything twice.
import { derivedId } from 'retrysafe';
import {
  type EntityTagCondition,
  PreconditionFailedError,
  ProblemError,
  parseEntityTagList,
  strongMatch,
  ValidationError,
} from 'retrysafe/http';
import type { OrderPayment } from '../data/types.js';
import {
  type OrderInput,
  type PaymentMovement,
  type PendingChange,
  replacedOrder,
  type StoredOrder,
  totalOf,
  withPendingChange,
} from '../domain/orders.js';
import { PaymentsRejectedError } from '../payments/errors.js';
import { type CheckoutDeps, checkChargeable, serviceJobMaxAttempts } from './checkout.js';

/** The job that applies a change whose client gave up after reserving it. */
export const changeCompleterTopic = 'order.change.complete';

/** Seconds a PUT refused because another change is under way waits before trying again. */
export const changeInProgressRetryAfterSeconds = 1;

export interface ChangeCompleterPayload {
  tenant: string;
  orderId: string;
  /** The version the change replaces: a later change is not this job's. */
  version: number;
}

/** What a PUT asks: its If-Match, its body and the body's digest. */
export interface ChangeRequest {
  ifMatch: string;
  input: OrderInput;
  bodyDigest: string;
}

/**
 * What to do with a PUT, decided from the order as it is: `reserve` a new change, `resume` the
 * pending change this very PUT reserved (same If-Match, same body), or answer with the order
 * because this PUT was `applied` already (rule 33: "appears to have already been applied").
 */
export type ChangeDecision =
  | { kind: 'reserve'; order: StoredOrder }
  | { kind: 'resume'; order: StoredOrder; change: PendingChange }
  | { kind: 'applied'; order: StoredOrder };

/** What a request or job goes on with once the change is reserved: resume it, or answer. */
export type ReservedChange = Exclude<ChangeDecision, { kind: 'reserve' }>;

/** A payment the provider made for a change: what the ledger records. */
export interface PaymentMade {
  key: string;
  kind: 'charge' | 'refund';
  providerId: string;
  amountCents: number;
  refundsCharge: string | null;
}

/** 409 with Retry-After: another change of this order is moving money; it will be done soon. */
export class ChangeInProgressError extends ProblemError {
  override name = 'ChangeInProgressError';
  constructor(orderId: string, change: PendingChange) {
    super({
      status: 409,
      type: 'change-in-progress',
      title: 'Conflict',
      detail: `Order ${orderId} has a change to version ${change.version + 1} under way with another body; retry after it is done (GET the order for its new ETag).`,
      headers: { 'retry-after': String(changeInProgressRetryAfterSeconds) },
    });
  }
}

/** 502: the provider definitively refused a payment the change planned; the change stays pending. */
export class ChangeRefusedError extends ProblemError {
  override name = 'ChangeRefusedError';
  constructor(orderId: string, cause: PaymentsRejectedError) {
    super({
      status: 502,
      type: 'payment-provider-refused',
      title: 'Bad gateway',
      detail: `The payment provider refused a payment of order ${orderId}'s change (${cause.message}); the change stays pending and is retried by its completer.`,
      cause,
    });
  }
}

/** The If-Match condition matches `etag` (a `*` only the current ETag, never a replaced one). */
function matcher(ifMatch: string, currentEtag: string): (etag: string | null | undefined) => boolean {
  const condition: EntityTagCondition | undefined = parseEntityTagList(ifMatch);
  return (etag) => {
    if (condition === undefined || etag === null || etag === undefined) return false;
    if (condition.any) return etag === currentEtag;
    return strongMatch(condition, etag);
  };
}

/**
 * 412 unless If-Match names the order's current ETag, the ETag its pending change replaced, or
 * the one its last change replaced: only those can still mean something. Body-independent, so
 * it is decided before the body is validated, like every precondition.
 */
export function checkChangePrecondition(order: StoredOrder, ifMatch: string): void {
  const matches = matcher(ifMatch, order.etag);
  if (matches(order.etag) || matches(order.pendingChange?.replacesEtag) || matches(order.replacedEtag))
    return;
  throw changedMeanwhile(order);
}

export function changedMeanwhile(order: StoredOrder): PreconditionFailedError {
  return new PreconditionFailedError(
    `Order ${order.id} was changed by someone else (its ETag is ${order.etag}): reload it and try again.`,
  );
}

/** Decides what a PUT does to `order`; throws the 409, 412 or 422 that refuses it. */
export function decideChange(order: StoredOrder, request: ChangeRequest): ChangeDecision {
  const matches = matcher(request.ifMatch, order.etag);
  const pending = order.pendingChange;
  if (pending !== null && matches(pending.replacesEtag) && pending.bodyDigest === request.bodyDigest)
    return { kind: 'resume', order, change: pending };
  // The identical PUT of the last change: answered with the order, nothing moves again.
  if (!matches(order.etag) && matches(order.replacedEtag) && order.replacedBodyDigest === request.bodyDigest)
    return { kind: 'applied', order };
  if (pending !== null && (matches(pending.replacesEtag) || matches(order.etag)))
    throw new ChangeInProgressError(order.id, pending);
  if (!matches(order.etag)) throw changedMeanwhile(order);
  if (order.status !== 'paid')
    throw new ProblemError({
      status: 409,
      type: 'order-not-paid',
      title: 'Conflict',
      detail: `Order ${order.id} is ${order.status}, not paid: only a paid order's items can be replaced.`,
    });
  if (order.shipment === 'shipped')
    throw new ProblemError({
      status: 409,
      type: 'order-shipped',
      title: 'Conflict',
      detail: `Order ${order.id} has shipped: its items can no longer be replaced.`,
    });
  if (request.input.currency !== order.currency)
    throw new ValidationError([
      { pointer: '/currency', detail: `must be ${order.currency}, the order's currency` },
    ]);
  checkChargeable(totalOf(request.input.items));
  return { kind: 'reserve', order };
}

/**
 * The payments that move what was paid to the new total, with their derived keys: one charge of
 * the difference (`<order id>:v<version>:charge`), or refunds of it over the order's charges
 * newest first, never more than each has left (`<order id>:v<version>:refund:<charge id>`).
 * Planned once, at reservation, so every run of the change makes exactly these calls.
 */
export function planMovements(
  order: StoredOrder,
  targetTotalCents: number,
  ledger: readonly OrderPayment[],
): PaymentMovement[] {
  const prefix = `${order.id}:v${order.version}`;
  const difference = targetTotalCents - order.paidCents;
  if (difference > 0) return [{ kind: 'charge', key: `${prefix}:charge`, amountCents: difference }];
  let toRefund = -difference;
  const movements: PaymentMovement[] = [];
  const charges = ledger.filter((payment) => payment.kind === 'charge').reverse();
  for (const charge of charges) {
    if (toRefund === 0) break;
    const refunded = ledger
      .filter((payment) => payment.kind === 'refund' && payment.refundsCharge === charge.providerId)
      .reduce((sum, refund) => sum + refund.amountCents, 0);
    const amountCents = Math.min(charge.amountCents - refunded, toRefund);
    if (amountCents <= 0) continue;
    movements.push({
      kind: 'refund',
      key: `${prefix}:refund:${charge.providerId}`,
      amountCents,
      chargeId: charge.providerId,
    });
    toRefund -= amountCents;
  }
  if (toRefund > 0)
    throw new Error(
      `order ${order.id}: its ledger holds ${toRefund} cents less in charges than it says was paid (${order.paidCents})`,
    );
  return movements;
}

/**
 * Part 1, in `tx`: decides again on the order as this transaction sees it, and for a new change
 * stores it on the order (compare-and-set on the ETag it replaces) with the job that applies it
 * should its client give up. A lost compare-and-set decides once more on what won.
 */
export async function reserveChange<Tx>(
  tx: Tx,
  deps: CheckoutDeps<Tx>,
  tenant: string,
  orderId: string,
  request: ChangeRequest,
): Promise<ReservedChange> {
  const { orders, jobs } = deps.data;
  const current = await orders.getIn(tx, tenant, orderId);
  if (current === undefined) throw new Error(`order ${orderId} of ${tenant} vanished during its change`);
  const decision = decideChange(current, request);
  if (decision.kind !== 'reserve') return decision;
  const ledger = await orders.paymentsIn(tx, tenant, orderId);
  const change: PendingChange = {
    version: current.version,
    replacesEtag: current.etag,
    bodyDigest: request.bodyDigest,
    input: request.input,
    movements: planMovements(current, totalOf(request.input.items), ledger),
    reservedAt: new Date().toISOString(),
  };
  const reserved = withPendingChange(current, change);
  if (!(await orders.update(tx, reserved, current.etag))) {
    const winner = await orders.getIn(tx, tenant, orderId);
    const again = winner && decideChange(winner, request);
    if (again === undefined || again.kind === 'reserve') throw changedMeanwhile(winner ?? current);
    return again;
  }
  const payload: ChangeCompleterPayload = { tenant, orderId, version: change.version };
  await jobs.enqueue(tx, {
    topic: changeCompleterTopic,
    id: derivedId(orderId, `${changeCompleterTopic}:v${change.version}`),
    payload,
    runAt: Date.now() + deps.completerDelayMs,
    maxAttempts: serviceJobMaxAttempts,
  });
  return { kind: 'resume', order: reserved, change };
}

/**
 * Part 2: makes the change's planned payments, in order, each with its derived key. Run again —
 * by a retry, a takeover or the completer — every one is the provider's replay. Throws
 * `PaymentsUnavailableError` (503, "may have moved money": retry) or `ChangeRefusedError`.
 */
export async function movePayments<Tx>(
  deps: CheckoutDeps<Tx>,
  order: StoredOrder,
  change: PendingChange,
): Promise<PaymentMade[]> {
  const made: PaymentMade[] = [];
  try {
    for (const movement of change.movements) {
      if (movement.kind === 'charge') {
        const { charge } = await deps.payments.charge({
          key: movement.key,
          amount: movement.amountCents,
          currency: change.input.currency,
          reference: order.id,
        });
        made.push({
          key: movement.key,
          kind: 'charge',
          providerId: charge.id,
          amountCents: charge.amount,
          refundsCharge: null,
        });
      } else {
        const { refund } = await deps.payments.refund({
          key: movement.key,
          charge: movement.chargeId,
          amount: movement.amountCents,
          reference: order.id,
        });
        made.push({
          key: movement.key,
          kind: 'refund',
          providerId: refund.id,
          amountCents: refund.amount,
          refundsCharge: refund.charge,
        });
      }
    }
  } catch (error) {
    if (error instanceof PaymentsRejectedError) throw new ChangeRefusedError(order.id, error);
    throw error;
  }
  return made;
}

/**
 * Part 3, in `tx`: applies `change` with its payments in the ledger, while it is still pending
 * (a compare-and-set on the order's ETag): whoever comes second finds it applied and gets the
 * order as it is. Undefined when the order has moved past it (a later change): nothing written.
 */
export async function applyChange<Tx>(
  tx: Tx,
  deps: CheckoutDeps<Tx>,
  tenant: string,
  orderId: string,
  change: PendingChange,
  made: readonly PaymentMade[],
): Promise<StoredOrder | undefined> {
  const { orders } = deps.data;
  for (let attempt = 0; attempt < 2; attempt++) {
    const current = await orders.getIn(tx, tenant, orderId);
    if (current === undefined) throw new Error(`order ${orderId} of ${tenant} vanished during its change`);
    if (!isPending(current, change)) return wasApplied(current, change) ? current : undefined;
    const applied = replacedOrder(current, change);
    if (!(await orders.update(tx, applied, current.etag))) continue;
    for (const payment of made)
      await orders.recordPayment(tx, { ...payment, tenant, orderId, createdAt: applied.updatedAt });
    return applied;
  }
  throw new Error(`order ${orderId} of ${tenant} kept changing while its change was applied`);
}

function isPending(order: StoredOrder, change: PendingChange): boolean {
  const pending = order.pendingChange;
  return (
    pending !== null &&
    pending.version === change.version &&
    pending.replacesEtag === change.replacesEtag &&
    pending.bodyDigest === change.bodyDigest
  );
}

function wasApplied(order: StoredOrder, change: PendingChange): boolean {
  return (
    order.version === change.version + 1 &&
    order.replacedEtag === change.replacesEtag &&
    order.replacedBodyDigest === change.bodyDigest
  );
}
