// Imports on PostgreSQL: reads on the pool, writes on the transaction's client they are given
// (the request's, then each batch step's).
import type { Pool, PoolClient } from 'pg';
import { toPage } from '../data/types.js';
import { type BatchRow, resultOf } from './result.js';
import type { ImportRecord, ImportRepository } from './types.js';

interface ImportRow {
  tenant: string;
  id: string;
  total: number;
  callback_url: string | null;
  created_at: string;
}

export function postgresImports(pool: Pool): ImportRepository<PoolClient> {
  return {
    async insert(tx, record, input) {
      await tx.query(
        `INSERT INTO order_imports (tenant, id, total, input, callback_url, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, id) DO NOTHING`,
        [record.tenant, record.id, record.total, input, record.callbackUrl, record.createdAt],
      );
    },
    async get(tenant, id) {
      const { rows } = await pool.query<ImportRow>(
        'SELECT tenant, id, total, callback_url, created_at FROM order_imports WHERE tenant = $1 AND id = $2',
        [tenant, id],
      );
      return rows[0] && toRecord(rows[0]);
    },
    async input(tx, tenant, id) {
      const { rows } = await tx.query<{ input: string | null }>(
        'SELECT input FROM order_imports WHERE tenant = $1 AND id = $2',
        [tenant, id],
      );
      const input = rows[0]?.input;
      return input == null ? undefined : (JSON.parse(input) as unknown[]);
    },
    async writeBatch(tx, record, batch, orderIds, result) {
      await tx.query('UPDATE orders SET import_id = $1 WHERE tenant = $2 AND id = ANY($3::text[])', [
        record.id,
        record.tenant,
        orderIds,
      ]);
      await tx.query(
        `INSERT INTO order_import_batches (tenant, import_id, batch, created, failed, errors)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, import_id, batch) DO NOTHING`,
        [record.tenant, record.id, batch, result.created, result.failed, JSON.stringify(result.errors)],
      );
    },
    async finish(tx, tenant, id) {
      await tx.query('UPDATE order_imports SET input = NULL WHERE tenant = $1 AND id = $2', [tenant, id]);
    },
    async result(tenant, id) {
      const { rows } = await pool.query<BatchRow>(
        'SELECT created, failed, errors FROM order_import_batches WHERE tenant = $1 AND import_id = $2 ORDER BY batch',
        [tenant, id],
      );
      return resultOf(rows);
    },
    async orderIds(tenant, importId, afterSeq, limit) {
      const { rows } = await pool.query<{ seq: string; id: string }>(
        'SELECT seq, id FROM orders WHERE tenant = $1 AND import_id = $2 AND seq > $3 ORDER BY seq LIMIT $4',
        [tenant, importId, afterSeq, limit + 1],
      );
      return toPage(
        rows,
        limit,
        (row) => row.id,
        (row) => Number(row.seq),
      );
    },
  };
}

function toRecord(row: ImportRow): ImportRecord {
  return {
    tenant: row.tenant,
    id: row.id,
    total: row.total,
    callbackUrl: row.callback_url,
    createdAt: row.created_at,
  };
}
