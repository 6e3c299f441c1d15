// Users on SQLite: reads on the database, writes on the transaction they are given.
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';
import type { StoredUser } from '../../domain/users.js';
import { toPage, type UserRepository } from '../types.js';
import { statementCache } from './statements.js';

interface UserRow {
  seq: number;
  tenant: string;
  id: string;
  username: string;
  email: string;
  age: number | null;
  bio: string | null;
  interests: string;
  version: number;
  created_at: string;
  updated_at: string;
  etag: string;
}

const statements = statementCache((db: SqliteDatabase) => ({
  byId: db.prepare('SELECT * FROM users WHERE tenant = ? AND id = ?'),
  byUsername: db.prepare('SELECT id FROM users WHERE tenant = ? AND username = ?'),
  after: db.prepare('SELECT * FROM users WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?'),
  insert: db.prepare(`
    INSERT INTO users (tenant, id, username, email, age, bio, interests, version, created_at, updated_at, etag)
    VALUES (@tenant, @id, @username, @email, @age, @bio, @interests, @version, @createdAt, @updatedAt, @etag)`),
  replace: db.prepare(`
    UPDATE users SET username = @username, email = @email, age = @age, bio = @bio, interests = @interests,
      version = @version, updated_at = @updatedAt, etag = @etag
    WHERE tenant = @tenant AND id = @id AND etag = @expectedEtag`),
  delete: db.prepare('DELETE FROM users WHERE tenant = ? AND id = ? AND etag = ?'),
}));

export function sqliteUsers(db: SqliteDatabase): UserRepository<SqliteDatabase> {
  return {
    async get(tenant, id) {
      const row = statements(db).byId.get(tenant, id) as UserRow | undefined;
      return row && toUser(row);
    },
    async list(tenant, afterSeq, limit) {
      const rows = statements(db).after.all(tenant, afterSeq, limit + 1) as UserRow[];
      return toPage(rows, limit, toUser, (row) => row.seq);
    },
    async insert(tx, user) {
      const sql = statements(tx);
      const clash = sql.byUsername.get(user.tenant, user.username) as { id: string } | undefined;
      if (clash) return { ok: false, reason: 'username-taken', existingId: clash.id };
      if (sql.byId.get(user.tenant, user.id)) return { ok: false, reason: 'id-taken' };
      sql.insert.run(userParams(user));
      return { ok: true };
    },
    async replace(tx, user, expectedEtag) {
      const sql = statements(tx);
      const clash = sql.byUsername.get(user.tenant, user.username) as { id: string } | undefined;
      if (clash && clash.id !== user.id) return { ok: false, reason: 'username-taken', existingId: clash.id };
      const changed = sql.replace.run({ ...userParams(user), expectedEtag }).changes;
      return changed === 1 ? { ok: true } : { ok: false, reason: 'stale' };
    },
    async delete(tx, tenant, id, expectedEtag) {
      return statements(tx).delete.run(tenant, id, expectedEtag).changes === 1;
    },
  };
}

function userParams(user: StoredUser) {
  return {
    tenant: user.tenant,
    id: user.id,
    username: user.username,
    email: user.email,
    age: user.age,
    bio: user.bio,
    interests: JSON.stringify(user.interests),
    version: user.version,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
    etag: user.etag,
  };
}

function toUser(row: UserRow): StoredUser & { seq: number } {
  return {
    seq: row.seq,
    tenant: row.tenant,
    id: row.id,
    username: row.username,
    email: row.email,
    age: row.age,
    bio: row.bio,
    interests: JSON.parse(row.interests) as string[],
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    etag: row.etag,
  };
}
