// Where a chaos run keeps its data: a fresh SQLite file, or a fresh database on the user's
// PostgreSQL server, and for `--store redis` a key prefix of its own. Removed after the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseConfig } from '../config.js';

export type ChaosStore = 'sqlite' | 'postgres' | 'redis';

export interface Scratch {
  database: DatabaseConfig;
  /** `--db` for the service processes. */
  dbArgument: string;
  /** Environment that points the service processes at Redis, when records live there. */
  env: Record<string, string>;
  /** Where the data is, for the report. */
  describe: string;
  remove(): Promise<void>;
}

export interface ScratchOptions {
  store: ChaosStore;
  runId: string;
  /** A PostgreSQL server URL (its database is only used to create and drop the scratch one). */
  postgresUrl: string | undefined;
  redisUrl: string;
  keep: boolean;
}

export async function createScratch(options: ScratchOptions): Promise<Scratch> {
  if (options.store === 'postgres') return createPostgresScratch(options);
  const dir = mkdtempSync(join(tmpdir(), `retrysafe-chaos-${options.runId}-`));
  const path = join(dir, 'chaos.db');
  const sqlite: Scratch = {
    database: { kind: 'sqlite', path },
    dbArgument: path,
    env: {},
    describe: `SQLite ${path}`,
    remove: async () => {
      if (!options.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
  if (options.store === 'sqlite') return sqlite;
  const prefix = `retrysafe-chaos:${options.runId}:`;
  return {
    ...sqlite,
    env: { REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: prefix },
    describe: `${sqlite.describe}; idempotency records in Redis under ${prefix}`,
    remove: async () => {
      await sqlite.remove();
      if (!options.keep) await deleteRedisPrefix(options.redisUrl, prefix);
    },
  };
}

async function createPostgresScratch(options: ScratchOptions): Promise<Scratch> {
  if (!options.postgresUrl) {
    throw new Error('--store postgres needs --database-url postgres://… (or DATABASE_URL)');
  }
  const { default: pg } = await import('pg');
  const name = `retrysafe_chaos_${options.runId}`;
  const admin = new pg.Client({ connectionString: options.postgresUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(options.postgresUrl);
  url.pathname = `/${name}`;
  return {
    database: { kind: 'postgres', url: url.href },
    dbArgument: url.href,
    env: {},
    describe: `PostgreSQL database ${name}`,
    remove: async () => {
      if (options.keep) return;
      const cleanup = new pg.Client({ connectionString: options.postgresUrl });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const { createClient } = await import('redis');
  const client = createClient({ url });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) await client.del(keys);
    }
  } finally {
    await client.quit();
  }
}
