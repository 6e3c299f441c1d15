// Imports on SQLite: the import row and its batches in the service's file, written on the
// transaction they are given (the request's, then each batch step's).
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';
import { statementCache } from '../data/sqlite/statements.js';
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

const statements = statementCache((db: SqliteDatabase) => ({
  insert: db.prepare(`INSERT INTO order_imports (tenant, id, total, input, callback_url, created_at)
    VALUES (@tenant, @id, @total, @input, @callbackUrl, @createdAt) ON CONFLICT (tenant, id) DO NOTHING`),
  get: db.prepare(
    'SELECT tenant, id, total, callback_url, created_at FROM order_imports WHERE tenant = ? AND id = ?',
  ),
  input: db.prepare('SELECT input FROM order_imports WHERE tenant = ? AND id = ?'),
  finish: db.prepare('UPDATE order_imports SET input = NULL WHERE tenant = ? AND id = ?'),
  // json_each: one statement tags the whole batch, whatever its size.
  tag: db.prepare(
    'UPDATE orders SET import_id = ? WHERE tenant = ? AND id IN (SELECT value FROM json_each(?))',
  ),
  batch: db.prepare(`INSERT INTO order_import_batches (tenant, import_id, batch, created, failed, errors)
    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, import_id, batch) DO NOTHING`),
  batches: db.prepare(
    'SELECT created, failed, errors FROM order_import_batches WHERE tenant = ? AND import_id = ? ORDER BY batch',
  ),
  orderIds: db.prepare(
    'SELECT seq, id FROM orders WHERE tenant = ? AND import_id = ? AND seq > ? ORDER BY seq LIMIT ?',
  ),
}));

export function sqliteImports(db: SqliteDatabase): ImportRepository<SqliteDatabase> {
  return {
    async insert(tx, record, input) {
      statements(tx).insert.run({ ...record, input });
    },
    async get(tenant, id) {
      const row = statements(db).get.get(tenant, id) as ImportRow | undefined;
      return row && toRecord(row);
    },
    async input(tx, tenant, id) {
      const row = statements(tx).input.get(tenant, id) as { input: string | null } | undefined;
      return row?.input == null ? undefined : (JSON.parse(row.input) as unknown[]);
    },
    async writeBatch(tx, record, batch, orderIds, result) {
      const sql = statements(tx);
      sql.tag.run(record.id, record.tenant, JSON.stringify(orderIds));
      sql.batch.run(
        record.tenant,
        record.id,
        batch,
        result.created,
        result.failed,
        JSON.stringify(result.errors),
      );
    },
    async finish(tx, tenant, id) {
      statements(tx).finish.run(tenant, id);
    },
    async result(tenant, id) {
      return resultOf(statements(db).batches.all(tenant, id) as BatchRow[]);
    },
    async orderIds(tenant, importId, afterSeq, limit) {
      const rows = statements(db).orderIds.all(tenant, importId, afterSeq, limit + 1) as {
        seq: number;
        id: string;
      }[];
      return toPage(
        rows,
        limit,
        (row) => row.id,
        (row) => row.seq,
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
