// `retrysafe/stores/redis`: a shared store on Redis (or Redis Cluster) for many processes, taking
// an ioredis or node-redis client you already have. Each primitive is one Lua script.
//
// Guarantee: business data lives elsewhere, so this store has no `transaction`; the engine stores
// the response after your handler returns, which makes a handler at-least-once per lease. Derive
// downstream idempotency keys from `execution.recordId` (`<recordId>:<step>`) to stay safe.
//
// Expiry: every record carries a Redis TTL (PEXPIREAT at its `expiresAtMs`), so Redis deletes
// expired records by itself and `reap` always returns 0. The scripts also compare `expiresAtMs`
// with the caller's `nowMs`, so a logically expired record counts as gone even before its TTL
// fires. The TTL is absolute: keep the app's clock and Redis's roughly in step.
//
// Encoding: one hash per record at `<prefix>{<base64url sha256 of scopeKey>}`. The braces are a
// Cluster hash tag, so any later per-record key lands in the same slot; hashing keeps arbitrary
// scope keys (which may contain braces) out of the tag. The body is stored as raw bytes.
import { createHash } from 'node:crypto';
import { setImmediate as afterThisTurn } from 'node:timers';
import type {
  ClaimInput,
  ClaimResult,
  CompleteInput,
  IdempotencyRecord,
  IdempotencyStore,
} from '../idempotency/store.js';

export const defaultRedisKeyPrefix = 'retrysafe:';

/** The part of an ioredis `Redis` or `Cluster` the store uses: commands with Buffer replies. */
export interface IoRedisLike {
  callBuffer(command: string, args: (string | Buffer | number)[]): Promise<unknown>;
  /** When present (ioredis `Redis`), commands sent in one turn of the event loop share one write. */
  pipeline?(): IoRedisPipelineLike;
  /** True on an ioredis `Cluster`: its pipelines cannot mix records of different slots, so none is used. */
  readonly isCluster?: boolean;
}

/** The part of an ioredis pipeline the store uses. */
export interface IoRedisPipelineLike {
  callBuffer(command: string, args: (string | Buffer | number)[]): unknown;
  exec(): Promise<[error: Error | null, result: unknown][] | null>;
}

/** The part of a node-redis v4/v5 client (`createClient()` from `redis`) the store uses. */
export interface NodeRedisLike {
  sendCommand(args: (string | Buffer)[], options?: NodeRedisCommandOptions): Promise<unknown>;
}

/** v5 reads `typeMapping`, v4 reads `returnBuffers`; each ignores the other. */
export interface NodeRedisCommandOptions {
  typeMapping?: Record<number, unknown>;
  returnBuffers?: boolean;
}

export type RedisClientLike = IoRedisLike | NodeRedisLike;

export interface RedisStoreOptions {
  client: RedisClientLike;
  /** Prepended to every key. Default `retrysafe:`. No braces: the store owns the hash tag. */
  prefix?: string;
}

/** RESP type bytes node-redis v5 maps: bulk strings (`$`) to Buffer so bodies stay bytes, and
 * RESP3 maps (`%`) to flat arrays so hash replies read the same under RESP2 and RESP3. */
const respBlobString = 0x24;
const respMap = 0x25;

type Send = (args: (string | Buffer)[]) => Promise<unknown>;

interface Script {
  source: string;
  sha1: string;
}

function script(source: string): Script {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/** The fields of a record hash, in the order HMGET reads them back (see `toRecord`). */
const recordFields = [
  'state',
  'scopeKey',
  'recordId',
  'fingerprint',
  'token',
  'leaseExpiresAtMs',
  'expiresAtMs',
  'status',
  'headers',
  'body',
] as const;
type RecordField = (typeof recordFields)[number];
const recordFieldIndex = Object.fromEntries(recordFields.map((name, index) => [name, index])) as Record<
  RecordField,
  number
>;

// KEYS[1] record; ARGV scopeKey, recordId, fingerprint, token, nowMs, leaseExpiresAtMs,
// expiresAtMs, expireAtMs (the integer TTL deadline). Returns {1, recordId} when this call
// claimed, else {0, HMGET of recordFields} of the record that refused it.
const claimScript = script(`
local key = KEYS[1]
local nowMs = tonumber(ARGV[5])
local recordId = ARGV[2]
local current = redis.call('HMGET', key, 'state', 'recordId', 'fingerprint', 'leaseExpiresAtMs', 'expiresAtMs')
if current[1] then
  local retentionOver = tonumber(current[5]) <= nowMs
  local leaseOver = current[1] == 'claimed' and tonumber(current[4]) <= nowMs and current[3] == ARGV[3]
  if not retentionOver and not leaseOver then
    return {0, redis.call('HMGET', key, ${recordFields.map((name) => `'${name}'`).join(', ')})}
  end
  -- A lease takeover continues the same logical execution, so it keeps the record id.
  if not retentionOver then recordId = current[2] end
  redis.call('DEL', key)
end
redis.call('HSET', key, 'scopeKey', ARGV[1], 'recordId', recordId, 'fingerprint', ARGV[3], 'token', ARGV[4],
  'state', 'claimed', 'leaseExpiresAtMs', ARGV[6], 'expiresAtMs', ARGV[7])
redis.call('PEXPIREAT', key, ARGV[8])
return {1, recordId}
`);

// KEYS[1] record; ARGV token, status, headers (JSON), body (bytes), expiresAtMs, expireAtMs.
// Fenced: only the claim holding this token may store its response.
const completeScript = script(`
local key = KEYS[1]
local current = redis.call('HMGET', key, 'state', 'token')
if current[1] ~= 'claimed' or current[2] ~= ARGV[1] then return 0 end
redis.call('HSET', key, 'state', 'completed', 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4],
  'expiresAtMs', ARGV[5])
redis.call('HDEL', key, 'leaseExpiresAtMs')
redis.call('PEXPIREAT', key, ARGV[6])
return 1
`);

// KEYS[1] record; ARGV token. Fenced: a claim that lost its key cannot delete the new holder's.
const releaseScript = script(`
local current = redis.call('HMGET', KEYS[1], 'state', 'token')
if current[1] == 'claimed' and current[2] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

export class RedisIdempotencyStore implements IdempotencyStore<never> {
  readonly prefix: string;
  readonly #send: Send;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.prefix ?? defaultRedisKeyPrefix;
    if (/[{}]/.test(this.prefix)) {
      throw new TypeError(
        `prefix ${this.prefix} must not contain braces: the store sets the Cluster hash tag`,
      );
    }
    this.#send = binarySender(options.client);
  }

  /** The Redis key holding the record for `scopeKey`. */
  keyFor(scopeKey: string): string {
    return `${this.prefix}{${createHash('sha256').update(scopeKey).digest('base64url')}}`;
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    const reply = await this.#run(claimScript, input.scopeKey, [
      input.scopeKey,
      input.recordId,
      input.fingerprint,
      input.token,
      String(input.nowMs),
      String(input.leaseExpiresAtMs),
      String(input.expiresAtMs),
      expireAtArg(input.expiresAtMs),
    ]);
    if (!Array.isArray(reply) || reply.length !== 2)
      throw new Error('claim script returned an unexpected reply');
    const [won, payload] = reply as [unknown, unknown];
    if (Number(won) === 1) return { claimed: true, recordId: text(payload) };
    return { claimed: false, record: toRecord(payload) };
  }

  async complete(input: CompleteInput): Promise<boolean> {
    const { body } = input.response;
    const reply = await this.#run(completeScript, input.scopeKey, [
      input.token,
      String(input.response.status),
      JSON.stringify(input.response.headers),
      Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      String(input.expiresAtMs),
      expireAtArg(input.expiresAtMs),
    ]);
    return Number(reply) === 1;
  }

  async release(scopeKey: string, token: string): Promise<void> {
    await this.#run(releaseScript, scopeKey, [token]);
  }

  /** Always 0: each record's TTL deletes it when its retention ends. */
  async reap(_nowMs: number, _limit: number): Promise<number> {
    return 0;
  }

  /** Reads a record as stored, ignoring logical expiry; for tests and diagnostics. */
  async get(scopeKey: string): Promise<IdempotencyRecord | undefined> {
    const reply = await this.#send(['HMGET', this.keyFor(scopeKey), ...recordFields]);
    if (!Array.isArray(reply) || reply[0] === null || reply[0] === undefined) return undefined;
    return toRecord(reply);
  }

  // EVALSHA first (the script is usually cached); EVAL on NOSCRIPT, which also caches it.
  async #run(command: Script, scopeKey: string, args: (string | Buffer)[]): Promise<unknown> {
    const key = this.keyFor(scopeKey);
    try {
      return await this.#send(['EVALSHA', command.sha1, '1', key, ...args]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#send(['EVAL', command.source, '1', key, ...args]);
    }
  }
}

export function createRedisStore(options: RedisStoreOptions): RedisIdempotencyStore {
  return new RedisIdempotencyStore(options);
}

/** Sends a raw command and gets bulk strings back as Buffers, whichever client it is. */
function binarySender(client: RedisClientLike): Send {
  if ('callBuffer' in client && typeof client.callBuffer === 'function') return ioredisSender(client);
  if ('sendCommand' in client && typeof client.sendCommand === 'function') {
    const options: NodeRedisCommandOptions = {
      typeMapping: { [respBlobString]: Buffer, [respMap]: Array },
      returnBuffers: true,
    };
    return (args) => client.sendCommand(args, options);
  }
  throw new TypeError('client must be an ioredis client (callBuffer) or a node-redis client (sendCommand)');
}

interface QueuedCommand {
  args: (string | Buffer)[];
  resolve: (reply: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * ioredis writes every command to the socket at once, one system call each (node-redis
 * already batches a tick's commands). Here the commands queued in one turn of the event loop
 * go out as one pipeline: one write, one read of the replies. Each is still its own script,
 * run atomically and in order; each caller gets its own reply or error.
 */
function ioredisSender(client: IoRedisLike): Send {
  const one: Send = ([command, ...args]) => client.callBuffer(String(command), args);
  if (typeof client.pipeline !== 'function' || client.isCluster === true) return one;
  let queued: QueuedCommand[] = [];
  const flush = () => {
    const batch = queued;
    queued = [];
    if (batch.length === 1) {
      const [only] = batch as [QueuedCommand];
      one(only.args).then(only.resolve, only.reject);
      return;
    }
    const pipeline = client.pipeline!();
    for (const { args } of batch) pipeline.callBuffer(String(args[0]), args.slice(1));
    pipeline.exec().then(
      (replies) => {
        for (const [i, command] of batch.entries()) {
          const [error, reply] = replies?.[i] ?? [
            new Error('the Redis pipeline returned no reply'),
            undefined,
          ];
          if (error) command.reject(error);
          else command.resolve(reply);
        }
      },
      (error: unknown) => {
        for (const command of batch) command.reject(error);
      },
    );
  };
  return (args) =>
    new Promise((resolve, reject) => {
      queued.push({ args, resolve, reject });
      // From node:timers, so tests that fake the global timers cannot stall commands.
      if (queued.length === 1) afterThisTurn(flush);
    });
}

/** PEXPIREAT needs an integer; rounding up never deletes a record before its retention ends. */
function expireAtArg(expiresAtMs: number): string {
  return String(Math.ceil(expiresAtMs));
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  // Replies are Buffers: decode them in place rather than through a new view of their bytes.
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  throw new Error(`expected a string from Redis, got ${typeof value}`);
}

/** Parses an HMGET of `recordFields` (values in that order; null where a field is absent). */
function toRecord(reply: unknown): IdempotencyRecord {
  if (!Array.isArray(reply) || reply.length !== recordFields.length)
    throw new Error('expected a record from Redis');
  const raw = (name: RecordField): unknown => reply[recordFieldIndex[name]];
  const field = (name: RecordField): string => {
    const value = raw(name);
    if (value === null || value === undefined) throw new Error(`Redis record lacks field ${name}`);
    return text(value);
  };
  const base = {
    scopeKey: field('scopeKey'),
    recordId: field('recordId'),
    fingerprint: field('fingerprint'),
    expiresAtMs: Number(field('expiresAtMs')),
  };
  if (field('state') === 'claimed') {
    return {
      ...base,
      state: 'claimed',
      token: field('token'),
      leaseExpiresAtMs: Number(field('leaseExpiresAtMs')),
    };
  }
  const body = raw('body');
  // Decoding bytes as text would corrupt binary bodies: refuse rather than replay wrong bytes.
  if (!(body instanceof Uint8Array)) throw new Error('the Redis client returned the body as text, not bytes');
  return {
    ...base,
    state: 'completed',
    response: {
      status: Number(field('status')),
      headers: JSON.parse(field('headers')) as Record<string, string>,
      // A plain copy, so callers never hold a view into the client's reply buffers.
      body: new Uint8Array(body),
    },
  };
}
