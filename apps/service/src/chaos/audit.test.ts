import { describe, expect, it } from 'vitest';
import { auditOrders } from './audit.js';
import { passed } from './report.js';
import type { CallerOutcome, LogicalOrder } from './workers.js';

function caller(index: number, outcome: CallerOutcome, replayed = false): LogicalOrder {
  return { index, sku: `chaos-r-${index}`, idempotencyKey: `r-${index}`, outcome, attempts: 1, replayed };
}

const noProblems = { serverErrors: {}, unexpectedExits: [], startTimeouts: 0 };

describe('auditOrders', () => {
  it('passes a run where every caller saw the one order that exists', () => {
    const figures = auditOrders(
      [caller(0, { kind: 'created', orderId: 'o0' }), caller(1, { kind: 'created', orderId: 'o1' }, true)],
      [
        { id: 'o0', sku: 'chaos-r-0' },
        { id: 'o1', sku: 'chaos-r-1' },
      ],
    );
    expect(figures).toMatchObject({ attempted: 2, created: 2, duplicated: 0, lost: 0, replayedAnswers: 1 });
    expect(passed(figures, noProblems)).toBe(true);
  });

  it('counts a logical order stored twice as duplicated, with its extra rows', () => {
    const figures = auditOrders(
      [caller(0, { kind: 'created', orderId: 'o0' })],
      [
        { id: 'o0', sku: 'chaos-r-0' },
        { id: 'o0-again', sku: 'chaos-r-0' },
        { id: 'o0-third', sku: 'chaos-r-0' },
      ],
    );
    expect(figures).toMatchObject({ created: 1, duplicated: 1, extraRows: 2, lost: 0 });
    expect(passed(figures, noProblems)).toBe(false);
  });

  it('counts a lease overrun as lost when its held request was told 201 for another row', () => {
    const held = (orderId: string): LogicalOrder => ({
      ...caller(0, { kind: 'created', orderId: 'o0' }),
      heldRun: { kind: 'created', orderId },
    });
    const stored = [{ id: 'o0', sku: 'chaos-r-0' }];
    expect(auditOrders([held('o0')], stored).lost).toBe(0);
    expect(auditOrders([held('o0-by-the-held-run')], stored).lost).toBe(1);
    const takenOver = {
      ...caller(0, { kind: 'created', orderId: 'o0' }),
      heldRun: { kind: 'lease-lost' } as const,
    };
    expect(auditOrders([takenOver], stored)).toMatchObject({ lost: 0, duplicated: 0 });
  });

  it('counts a 201 whose order is missing, or is another row, as lost', () => {
    const figures = auditOrders(
      [caller(0, { kind: 'created', orderId: 'o0' }), caller(1, { kind: 'created', orderId: 'o1' })],
      [{ id: 'not-o1', sku: 'chaos-r-1' }],
    );
    expect(figures).toMatchObject({ created: 1, lost: 2, duplicated: 0 });
    expect(passed(figures, noProblems)).toBe(false);
  });

  it('reports unknown outcomes and whether their orders exist, without failing the run', () => {
    const figures = auditOrders(
      [
        caller(0, { kind: 'unknown', sent: 'maybe', errorKind: 'timeout' }),
        caller(1, { kind: 'unknown', sent: 'no', errorKind: 'network' }),
      ],
      [{ id: 'o0', sku: 'chaos-r-0' }],
    );
    expect(figures).toMatchObject({ created: 1, unknownOutcome: 2, unknownButCreated: 1, lost: 0 });
    expect(passed(figures, noProblems)).toBe(true);
  });

  it('fails on a call refused for good: valid orders refused (say, a 422 key reuse) mean a bug', () => {
    const figures = auditOrders(
      [
        caller(0, { kind: 'created', orderId: 'o0' }),
        caller(1, { kind: 'refused', status: 422, errorKind: 'idempotency_key_reuse' }),
      ],
      [{ id: 'o0', sku: 'chaos-r-0' }],
    );
    expect(figures.refused).toBe(1);
    expect(passed(figures, noProblems)).toBe(false);
  });

  it('fails a run that created nothing, or saw a 500 nobody injected, or lost a process by itself', () => {
    const none = auditOrders([caller(0, { kind: 'unknown', sent: 'maybe', errorKind: 'timeout' })], []);
    expect(passed(none, noProblems)).toBe(false);
    const fine = auditOrders(
      [caller(0, { kind: 'created', orderId: 'o0' })],
      [{ id: 'o0', sku: 'chaos-r-0' }],
    );
    expect(passed(fine, { serverErrors: { '503': 2 }, unexpectedExits: [], startTimeouts: 0 })).toBe(true);
    expect(passed(fine, { serverErrors: { '500': 1 }, unexpectedExits: [], startTimeouts: 0 })).toBe(false);
    expect(passed(fine, { serverErrors: {}, unexpectedExits: ['slot 1 exited (1)'], startTimeouts: 0 })).toBe(
      false,
    );
  });

  it('fails on an order of the run that no caller asked for', () => {
    const figures = auditOrders(
      [caller(0, { kind: 'created', orderId: 'o0' })],
      [
        { id: 'o0', sku: 'chaos-r-0' },
        { id: 'x', sku: 'chaos-r-99' },
      ],
    );
    expect(figures.unexpected).toBe(1);
    expect(passed(figures, noProblems)).toBe(false);
  });
});
