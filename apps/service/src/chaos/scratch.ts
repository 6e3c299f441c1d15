// Where a chaos run keeps its data: a fresh SQLite file, or a fresh database on the user's
// PostgreSQL server, and with records in Redis a key prefix of its own — on the user's Redis, or
// on a redis-server the run starts for itself when it is to restart it. Removed after the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseConfig } from '../config.js';
import { type OwnRedisServer, startOwnRedis } from './redis-server.js';

/** Where data and records live: `redis` is SQLite data with records in Redis; `postgres+redis` PostgreSQL data. */
export type ChaosStore = 'sqlite' | 'postgres' | 'redis' | 'postgres+redis';

export interface Scratch {
  database: DatabaseConfig;
  /** `--db` for the service processes. */
  dbArgument: string;
  /** Environment that points the service processes at Redis, when records live there. */
  env: Record<string, string>;
  /** Where the data is, for the report. */
  describe: string;
  /** The scratch PostgreSQL database's name, when the data is there. */
  postgresDatabase: string | undefined;
  /** The run's own redis-server, when it started one. */
  ownRedis: OwnRedisServer | undefined;
  remove(): Promise<void>;
}

export interface ScratchOptions {
  store: ChaosStore;
  runId: string;
  /** A PostgreSQL server URL (its database is only used to create and drop the scratch one). */
  postgresUrl: string | undefined;
  redisUrl: string;
  /** Start a redis-server of the run's own (in a temporary directory) instead of using `redisUrl`. */
  ownRedis: boolean;
  keep: boolean;
}

export async function createScratch(options: ScratchOptions): Promise<Scratch> {
  const data =
    options.store === 'postgres' || options.store === 'postgres+redis'
      ? await createPostgresScratch(options)
      : createSqliteScratch(options);
  if (options.store === 'sqlite' || options.store === 'postgres') return data;
  const prefix = `retrysafe-chaos:${options.runId}:`;
  if (options.ownRedis) {
    const dir = mkdtempSync(join(tmpdir(), `retrysafe-chaos-${options.runId}-redis-`));
    let redis: OwnRedisServer;
    try {
      redis = await startOwnRedis(dir);
    } catch (error) {
      await data.remove();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    return {
      ...data,
      env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix },
      describe: `${data.describe}; idempotency records in its own redis-server (port ${redis.port}, AOF in ${dir})`,
      ownRedis: redis,
      remove: async () => {
        await redis.stop();
        await data.remove();
        if (!options.keep) rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  return {
    ...data,
    env: { REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: prefix },
    describe: `${data.describe}; idempotency records in Redis under ${prefix}`,
    remove: async () => {
      await data.remove();
      if (!options.keep) await deleteRedisPrefix(options.redisUrl, prefix);
    },
  };
}

function createSqliteScratch(options: ScratchOptions): Scratch {
  const dir = mkdtempSync(join(tmpdir(), `retrysafe-chaos-${options.runId}-`));
  const path = join(dir, 'chaos.db');
  return {
    database: { kind: 'sqlite', path },
    dbArgument: path,
    env: {},
    describe: `SQLite ${path}`,
    postgresDatabase: undefined,
    ownRedis: undefined,
    remove: async () => {
      if (!options.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function createPostgresScratch(options: ScratchOptions): Promise<Scratch> {
  if (!options.postgresUrl) {
    throw new Error(`--store ${options.store} needs --database-url postgres://… (or DATABASE_URL)`);
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
    postgresDatabase: name,
    ownRedis: undefined,
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
