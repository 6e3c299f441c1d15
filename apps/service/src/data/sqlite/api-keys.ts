// API keys on SQLite: their writes run in the unit of work's own transactions.
import type { SqliteDatabase, SqliteUnitOfWork } from 'retrysafe/stores/sqlite';
import type { ApiKeyRecord, ApiKeyRepository } from '../types.js';
import { statementCache } from './statements.js';

const statements = statementCache((db: SqliteDatabase) => ({
  find: db.prepare('SELECT key_hash AS keyHash, tenant, role, label FROM api_keys WHERE key_hash = ?'),
  count: db.prepare('SELECT count(*) AS n FROM api_keys'),
  insert: db.prepare(
    'INSERT INTO api_keys (key_hash, tenant, role, label) VALUES (@keyHash, @tenant, @role, @label)',
  ),
  deleteDemo: db.prepare(`DELETE FROM api_keys WHERE label = 'demo'`),
}));

export function sqliteApiKeys(unitOfWork: SqliteUnitOfWork): ApiKeyRepository {
  return {
    async find(keyHash) {
      return statements(unitOfWork.db).find.get(keyHash) as ApiKeyRecord | undefined;
    },
    async add(key) {
      await unitOfWork.transaction((tx) => {
        statements(tx).deleteDemo.run();
        statements(tx).insert.run(key);
      });
    },
    async seedDemoKeys(keys) {
      // BEGIN IMMEDIATE: of several processes starting on one file, exactly one seeds.
      return unitOfWork.transaction((tx) => {
        if ((statements(tx).count.get() as { n: number }).n > 0) return false;
        for (const key of keys) statements(tx).insert.run(key);
        return true;
      });
    },
  };
}
