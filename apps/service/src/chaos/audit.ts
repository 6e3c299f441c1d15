// After a chaos run: reads back every order the run could have created and compares the
// database with what each caller was told. Duplicates and losses are the two failures.
import type { DatabaseConfig } from '../config.js';
import { openServiceData } from '../server.js';
import type { LogicalOrder } from './workers.js';

export interface StoredChaosOrder {
  id: string;
  sku: string;
}

export interface AuditFigures {
  /** Logical orders the callers started. */
  attempted: number;
  /** Logical orders that exist in the database (once or more). */
  created: number;
  /** Logical orders that exist more than once. */
  duplicated: number;
  /** Extra rows beyond the first, over all duplicated orders. */
  extraRows: number;
  /**
   * Callers told 201 whose order is missing (or is another row than the one they were told);
   * for a lease-overrun order, either of its two callers.
   */
  lost: number;
  /** Callers that gave up without knowing the outcome, … */
  unknownOutcome: number;
  /** … and of those, how many orders exist anyway (a caller that keeps its key would replay them). */
  unknownButCreated: number;
  /** Callers refused for good (a 4xx that retrying cannot change); none are expected. */
  refused: number;
  /** Orders of this run in the database that no caller asked for; none are expected. */
  unexpected: number;
  /** Callers that were told the answer was a replay of an earlier attempt. */
  replayedAnswers: number;
}

export function auditOrders(callers: LogicalOrder[], stored: StoredChaosOrder[]): AuditFigures {
  const rowsBySku = new Map<string, StoredChaosOrder[]>();
  for (const row of stored) {
    const rows = rowsBySku.get(row.sku);
    if (rows) rows.push(row);
    else rowsBySku.set(row.sku, [row]);
  }
  const figures: AuditFigures = {
    attempted: callers.length,
    created: 0,
    duplicated: 0,
    extraRows: 0,
    lost: 0,
    unknownOutcome: 0,
    unknownButCreated: 0,
    refused: 0,
    unexpected: 0,
    replayedAnswers: 0,
  };
  const asked = new Set<string>();
  for (const caller of callers) {
    asked.add(caller.sku);
    const rows = rowsBySku.get(caller.sku) ?? [];
    if (rows.length > 0) figures.created++;
    if (rows.length > 1) {
      figures.duplicated++;
      figures.extraRows += rows.length - 1;
    }
    if (caller.replayed) figures.replayedAnswers++;
    const { outcome } = caller;
    const told = (id: string) => rows.some((row) => row.id === id);
    // A 201 to either caller of a lease-overrun order names the one row that must exist.
    if (
      (outcome.kind === 'created' && !told(outcome.orderId)) ||
      (caller.heldRun?.kind === 'created' && !told(caller.heldRun.orderId))
    ) {
      figures.lost++;
    }
    if (outcome.kind === 'unknown') {
      figures.unknownOutcome++;
      if (rows.length > 0) figures.unknownButCreated++;
    }
    if (outcome.kind === 'refused') figures.refused++;
  }
  for (const sku of rowsBySku.keys()) if (!asked.has(sku)) figures.unexpected++;
  return figures;
}

/** Every order of `tenant` whose first item's SKU starts with `skuPrefix`, read page by page. */
export async function readChaosOrders(
  database: DatabaseConfig,
  tenant: string,
  skuPrefix: string,
): Promise<StoredChaosOrder[]> {
  const data = await openServiceData(database);
  try {
    const found: StoredChaosOrder[] = [];
    let afterSeq = 0;
    for (;;) {
      const page = await data.orders.list(tenant, afterSeq, 500);
      for (const order of page.items) {
        const sku = order.items[0]?.sku;
        if (sku?.startsWith(skuPrefix)) found.push({ id: order.id, sku });
      }
      if (page.nextAfterSeq === undefined) return found;
      afterSeq = page.nextAfterSeq;
    }
  } finally {
    await data.close();
  }
}
