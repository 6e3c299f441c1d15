// API keys on PostgreSQL: their writes run in the unit of work's own transactions.
import type { Pool, PoolClient } from 'pg';
import type { PostgresUnitOfWork } from 'retrysafe/stores/postgres';
import type { ApiKeyRecord, ApiKeyRepository } from '../types.js';

const insertKey = 'INSERT INTO api_keys (key_hash, tenant, role, label) VALUES ($1, $2, $3, $4)';

export function postgresApiKeys(pool: Pool, unitOfWork: PostgresUnitOfWork<PoolClient>): ApiKeyRepository {
  return {
    async find(keyHash) {
      const { rows } = await pool.query<ApiKeyRecord>(
        'SELECT key_hash AS "keyHash", tenant, role, label FROM api_keys WHERE key_hash = $1',
        [keyHash],
      );
      return rows[0];
    },
    async add(key) {
      await unitOfWork.transaction(async (tx) => {
        await tx.query(`DELETE FROM api_keys WHERE label = 'demo'`);
        await tx.query(insertKey, [key.keyHash, key.tenant, key.role, key.label]);
      });
    },
    async seedDemoKeys(keys) {
      return unitOfWork.transaction(async (tx) => {
        // Several processes may start at once: the lock makes exactly one of them seed.
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('retrysafe:api_keys'))`);
        const { rows } = await tx.query('SELECT 1 FROM api_keys LIMIT 1');
        if (rows.length > 0) return false;
        for (const key of keys) await tx.query(insertKey, [key.keyHash, key.tenant, key.role, key.label]);
        return true;
      });
    },
  };
}
