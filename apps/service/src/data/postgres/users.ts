// Users on PostgreSQL: reads on the pool, writes on the transaction's client they are given.
import type { Pool, PoolClient } from 'pg';
import type { StoredUser } from '../../domain/users.js';
import { toPage, type UserRepository } from '../types.js';

// Created-at strings are kept as text: the representation (and so its ETag) must come back
// byte for byte, and timestamptz would re-format it.
interface UserRow {
  seq: string;
  tenant: string;
  id: string;
  username: string;
  email: string;
  age: number | null;
  bio: string | null;
  interests: string[];
  version: number;
  created_at: string;
  updated_at: string;
  etag: string;
}

const uniqueViolation = '23505';

export function postgresUsers(pool: Pool): UserRepository<PoolClient> {
  return {
    async get(tenant, id) {
      const { rows } = await pool.query<UserRow>('SELECT * FROM users WHERE tenant = $1 AND id = $2', [
        tenant,
        id,
      ]);
      return rows[0] && toUser(rows[0]);
    },
    async list(tenant, afterSeq, limit) {
      const { rows } = await pool.query<UserRow>(
        'SELECT * FROM users WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3',
        [tenant, afterSeq, limit + 1],
      );
      return toPage(rows, limit, toUser, (row) => Number(row.seq));
    },
    async insert(tx, user) {
      const inserted = await tx.query(
        `INSERT INTO users (tenant, id, username, email, age, bio, interests, version, created_at, updated_at, etag)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
        userValues(user),
      );
      if (inserted.rowCount === 1) return { ok: true };
      // The id first, as on SQLite: racing identical create-by-PUTs lose on the id (412), not
      // on the username their winner now owns (a 409 would be the wrong answer).
      const { rows } = await tx.query('SELECT 1 FROM users WHERE tenant = $1 AND id = $2', [
        user.tenant,
        user.id,
      ]);
      if (rows.length > 0) return { ok: false, reason: 'id-taken' };
      const clash = await usernameOwner(tx, user.tenant, user.username);
      return clash
        ? { ok: false, reason: 'username-taken', existingId: clash }
        : { ok: false, reason: 'id-taken' };
    },
    async replace(tx, user, expectedEtag) {
      // A savepoint keeps the transaction usable when the new username is taken.
      await tx.query('SAVEPOINT replace_user');
      try {
        const changed = await tx.query(
          // created_at ($9) is rewritten unchanged: PostgreSQL refuses parameters a statement never uses.
          `UPDATE users SET username = $3, email = $4, age = $5, bio = $6, interests = $7, version = $8,
             created_at = $9, updated_at = $10, etag = $11
           WHERE tenant = $1 AND id = $2 AND etag = $12`,
          [...userValues(user), expectedEtag],
        );
        await tx.query('RELEASE SAVEPOINT replace_user');
        return changed.rowCount === 1 ? { ok: true } : { ok: false, reason: 'stale' };
      } catch (error) {
        if ((error as { code?: string }).code !== uniqueViolation) throw error;
        await tx.query('ROLLBACK TO SAVEPOINT replace_user');
        const clash = await usernameOwner(tx, user.tenant, user.username);
        return { ok: false, reason: 'username-taken', existingId: clash ?? '' };
      }
    },
    async delete(tx, tenant, id, expectedEtag) {
      const deleted = await tx.query('DELETE FROM users WHERE tenant = $1 AND id = $2 AND etag = $3', [
        tenant,
        id,
        expectedEtag,
      ]);
      return deleted.rowCount === 1;
    },
  };
}

async function usernameOwner(tx: PoolClient, tenant: string, username: string): Promise<string | undefined> {
  const { rows } = await tx.query<{ id: string }>(
    'SELECT id FROM users WHERE tenant = $1 AND username = $2',
    [tenant, username],
  );
  return rows[0]?.id;
}

function userValues(user: StoredUser): unknown[] {
  return [
    user.tenant,
    user.id,
    user.username,
    user.email,
    user.age,
    user.bio,
    JSON.stringify(user.interests),
    user.version,
    user.createdAt,
    user.updatedAt,
    user.etag,
  ];
}

function toUser(row: UserRow): StoredUser & { seq: number } {
  return {
    seq: Number(row.seq),
    tenant: row.tenant,
    id: row.id,
    username: row.username,
    email: row.email,
    age: row.age,
    bio: row.bio,
    interests: row.interests,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    etag: row.etag,
  };
}
