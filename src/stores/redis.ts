// `retrysafe/stores/redis`: a shared store on Redis (or Redis Cluster) for many processes, taking
// an ioredis or node-redis client you already have.
//
// Guarantee: business data lives elsewhere, so this store has no `transaction`; the engine stores
// the response after your handler returns, which makes a handler at-least-once per lease. Derive
// downstream idempotency keys from `execution.recordId` (`<recordId>:<step>`) to stay safe.
//
// Expiry: every record carries a Redis TTL (PXAT its `expiresAtMs`), so Redis deletes expired
// records by itself and `reap` always returns 0. A claim also compares `expiresAtMs` with the
// caller's `nowMs`, so a logically expired record counts as gone even before its TTL fires.
// The TTL is absolute: keep the app's clock and Redis's roughly in step.
//
// Encoding: one string per record at `<prefix>{<base64url sha256 of scopeKey>}` (the braces are
// a Cluster hash tag; hashing keeps arbitrary scope keys, which may contain braces, out of it).
// Its value is lines: a version line (`c:<token>` while claimed, `d:<token>` once completed),
// the record's fields as JSON, and once completed the response's status and headers as JSON
// followed by the body's raw bytes. The fields line carries the record format: from format 2 on
// it ends with `"formatVersion":2,"data":<JSON>}` (data always last, so a script can replace it
// without parsing JSON); a line without `formatVersion` was written before formats existed and
// reads as format 1 with data `{}`. Readers ignore fields they do not know, so older releases
// still read (and replay) format-2 records. The version line names one state of one record (tokens are
// unique per claim), which makes fencing a prefix comparison:
//   claim    `SET key value NX PXAT … GET`: one native command wins a free key or returns the
//            record that holds it; taking over an expired record is a compare-and-set script.
//   complete and release: a script that acts only while the value still starts `c:<token>\n`.
//   A released record is `c:-<uuid>\n` (a marker no claim's token can be, fresh per release)
//   with `leaseExpiresAtMs` 0: its id outlives every failed run, a release before the state
//   existed reads it as a lapsed claim, and a takeover judged on one release can never
//   overwrite the record after a later run took it over and released it again (no ABA).
//   Releases before this marker wrote `c:\n`; that still reads as released.
import { createHash, randomUUID } from 'node:crypto';
import { setImmediate as afterThisTurn } from 'node:timers';
import {
  type ClaimInput,
  type ClaimResult,
  type CompleteInput,
  currentRecordFormatVersion,
  type IdempotencyRecord,
  type IdempotencyStore,
  type RecordData,
  releasedToken,
  type SaveDataInput,
  takeoverRecordId,
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

/** RESP type byte node-redis v5 maps: bulk strings (`$`) to Buffer, so bodies stay bytes. */
const respBlobString = 0x24;

type Send = (args: (string | Buffer)[]) => Promise<unknown>;

interface Script {
  source: string;
  sha1: string;
}

function script(source: string): Script {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

// KEYS[1] record; ARGV version line it must still start with, new value, expire-at (ms).
// Compare-and-set for a takeover: replaces the record only while it is the version judged.
const replaceIfVersionScript = script(`
local current = redis.call('GET', KEYS[1])
if current == false or string.sub(current, 1, string.len(ARGV[1])) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 1
`);

// Replaces the data part of a fields line (without its newline). The first `,"data":` is the
// key itself: inside JSON strings every quote is escaped. A format-1 line gets format 2.
const withDataLua = `
local function withData(fields, data)
  local at = string.find(fields, ',"data":', 1, true)
  if at then return string.sub(fields, 1, at - 1) .. ',"data":' .. data .. '}' end
  return string.sub(fields, 1, string.len(fields) - 1) .. ',"formatVersion":${currentRecordFormatVersion},"data":' .. data .. '}'
end
`;

// KEYS[1] record; ARGV claim line (c:<token>), completed line (d:<token>), response JSON line
// and body, expire-at (ms), data JSON or '' to keep it. Fenced: only the claim holding this
// token may store its response; the record's own fields line is carried over.
const completeScript = script(`${withDataLua}
local current = redis.call('GET', KEYS[1])
local fence = ARGV[1]
if current == false or string.sub(current, 1, string.len(fence)) ~= fence then return 0 end
local fieldsEnd = string.find(current, '\\n', string.len(fence) + 1, true)
local fields = string.sub(current, string.len(fence) + 1, fieldsEnd - 1)
if ARGV[5] ~= '' then fields = withData(fields, ARGV[5]) end
redis.call('SET', KEYS[1], ARGV[2] .. fields .. '\\n' .. ARGV[3], 'PXAT', ARGV[4])
return 1
`);

// KEYS[1] record; ARGV claim line, data JSON. Fenced like completion; the TTL stays.
const saveDataScript = script(`${withDataLua}
local current = redis.call('GET', KEYS[1])
local fence = ARGV[1]
if current == false or string.sub(current, 1, string.len(fence)) ~= fence then return 0 end
local fieldsEnd = string.find(current, '\\n', string.len(fence) + 1, true)
local fields = string.sub(current, string.len(fence) + 1, fieldsEnd - 1)
redis.call('SET', KEYS[1], fence .. withData(fields, ARGV[2]) .. string.sub(current, fieldsEnd), 'KEEPTTL')
return 1
`);

// KEYS[1] record; ARGV claim line, released line (`c:-<uuid>\n`). Fenced: a claim that lost its key
// cannot touch the new holder's. Never deletes: the record becomes a claim nobody holds whose
// lease ended at 0, keeping its id, data and TTL (a slow run may still commit under that id).
// The first `,"leaseExpiresAtMs":` is the key itself (quotes inside strings are escaped).
const releaseScript = script(`
local current = redis.call('GET', KEYS[1])
local fence = ARGV[1]
if current == false or string.sub(current, 1, string.len(fence)) ~= fence then return 0 end
local fieldsEnd = string.find(current, '\\n', string.len(fence) + 1, true)
local fields = string.sub(current, string.len(fence) + 1, fieldsEnd - 1)
local _, keyEnd = string.find(fields, ',"leaseExpiresAtMs":', 1, true)
if keyEnd then
  local valueEnd = string.find(fields, '[,}]', keyEnd + 1)
  fields = string.sub(fields, 1, keyEnd) .. '0' .. string.sub(fields, valueEnd)
end
redis.call('SET', KEYS[1], ARGV[2] .. fields .. string.sub(current, fieldsEnd), 'KEEPTTL')
return 1
`);

// KEYS[1] the scope's set of records (member: record key, score: until when it counts); ARGV
// member, counts-until (ms), now (ms), max records. Forgets lapsed members, then admits the
// record if it is already counted or the scope has room.
// Returns 2 when it added the member, 1 when it was counted already, 0 when the scope is full.
// One script per scope: exact under any concurrency.
const reserveScript = script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) - tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 2
`);

// KEYS[1] the scope's set; ARGV member, counts-until (ms), now (ms). After a takeover that
// kept the record alive longer: moves the member's end later (never earlier).
const extendScript = script(`
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(ARGV[2]) > tonumber(score) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) - tonumber(ARGV[3]) then
    redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  end
end
return 1
`);

/** A claim that keeps meeting concurrent changes to its record gives up after this many rounds. */
const maxClaimAttempts = 5;

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

  /** The Redis key of the sorted set counting the records of `scope`, for `maxRecordsPerScope`. */
  scopeSetFor(scope: string): string {
    return `${this.prefix}scope:{${createHash('sha256').update(scope).digest('base64url')}}`;
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    const key = this.keyFor(input.scopeKey);
    const expireAt = expireAtArg(input.expiresAtMs);
    let counted: 'added' | 'already' | undefined;
    if (input.scopeLimit !== undefined) {
      counted = await this.#reserve(key, input, input.scopeLimit);
      if (counted === undefined) return { claimed: false, scopeFull: true };
    }
    try {
      const result = await this.#claimRecord(key, input, expireAt);
      // Only a claim that won moves the count's end (a replay or a refusal keeps no record alive).
      if (counted === 'already' && result.claimed) {
        // Best effort: the claim is won; a failure here only ends the count a little early.
        await this.#run(extendScript, this.scopeSetFor(input.scopeLimit!.scope), [
          key,
          expireAt,
          String(Math.floor(input.nowMs)),
        ]).catch(() => {});
      }
      return result;
    } catch (error) {
      // The claim failed after this call counted a new member: uncount it unless the record
      // exists after all (a concurrent claim of the same key made it), so failures leave no
      // phantom records in the scope's count.
      if (counted === 'added') await this.#forgetIfAbsent(key, input.scopeLimit!.scope);
      throw error;
    }
  }

  /**
   * Counts the record in its scope before the claim (another slot, so its own script): a key
   * already counted is admitted again and counts on, a new one only while there is room. A
   * member counts until its latest winning claim's retention ends (a takeover moves that end
   * later; a replay or a refused claim does not).
   * A completion restarts retention a run's duration after its claim, so a record may outlive
   * its member by that long (milliseconds, or up to a lease for a slow run): the bound is on
   * floods, not an exact quota. Undefined: the scope is full and the key holds no live record.
   */
  async #reserve(
    key: string,
    input: ClaimInput,
    limit: NonNullable<ClaimInput['scopeLimit']>,
  ): Promise<'added' | 'already' | undefined> {
    const admitted = Number(
      await this.#run(reserveScript, this.scopeSetFor(limit.scope), [
        key,
        expireAtArg(input.expiresAtMs),
        String(Math.floor(input.nowMs)),
        String(limit.maxRecords),
      ]),
    );
    if (admitted === 2) return 'added';
    if (admitted === 1) return 'already';
    // A record that outlived its member (a completion long after its claim) is still the
    // key's: the claim replays or takes it over as usual.
    return (await this.#holdsLive(key, input.nowMs)) ? 'already' : undefined;
  }

  async #forgetIfAbsent(key: string, scope: string): Promise<void> {
    try {
      if ((await this.#send(['EXISTS', key])) === 0) await this.#send(['ZREM', this.scopeSetFor(scope), key]);
    } catch {
      // Redis is unreachable: the member lapses with its score.
    }
  }

  async #claimRecord(key: string, input: ClaimInput, expireAt: string): Promise<ClaimResult> {
    for (let attempt = 0; attempt < maxClaimAttempts; attempt++) {
      // One native command takes a free key, or returns the record that holds it.
      const held = await this.#send([
        'SET',
        key,
        encodeClaim(input, input.recordId, input.data ?? {}),
        'NX',
        'PXAT',
        expireAt,
        'GET',
      ]);
      if (held === null || held === undefined) {
        return { claimed: true, recordId: input.recordId, data: input.data ?? {} };
      }
      const { record, version } = decodeRecord(held);
      const recordId = takeoverRecordId(record, input);
      if (recordId === undefined) return { claimed: false, record };
      // A lease takeover keeps what the earlier run checkpointed; a new record starts from the claim's.
      const data = recordId === record.recordId ? record.data : (input.data ?? {});
      const swapped = await this.#run(replaceIfVersionScript, key, [
        version,
        encodeClaim(input, recordId, data),
        expireAt,
      ]);
      if (Number(swapped) === 1) return { claimed: true, recordId, data };
      // The record changed or vanished since we read it: judge again.
    }
    throw new Error('claim kept meeting concurrent changes to its record');
  }

  async complete(input: CompleteInput): Promise<boolean> {
    const { status, headers, body } = input.response;
    const reply = await this.#run(completeScript, this.keyFor(input.scopeKey), [
      claimLine(input.token),
      `d:${input.token}\n`,
      Buffer.concat([
        Buffer.from(`${JSON.stringify({ status, headers, expiresAtMs: input.expiresAtMs })}\n`),
        Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      ]),
      expireAtArg(input.expiresAtMs),
      input.data === undefined ? '' : JSON.stringify(input.data),
    ]);
    return Number(reply) === 1;
  }

  async saveData(input: SaveDataInput): Promise<boolean> {
    const reply = await this.#run(saveDataScript, this.keyFor(input.scopeKey), [
      claimLine(input.token),
      JSON.stringify(input.data),
    ]);
    return Number(reply) === 1;
  }

  async release(scopeKey: string, token: string): Promise<void> {
    // A marker fresh per release: a takeover that read an earlier release cannot match it.
    await this.#run(releaseScript, this.keyFor(scopeKey), [claimLine(token), releasedLine()]);
  }

  /** Always 0: each record's TTL deletes it when its retention ends. */
  async reap(_nowMs: number, _limit: number): Promise<number> {
    return 0;
  }

  /** Reads a record as stored, ignoring logical expiry; for tests and diagnostics. */
  async get(scopeKey: string): Promise<IdempotencyRecord | undefined> {
    const value = await this.#send(['GET', this.keyFor(scopeKey)]);
    return value === null || value === undefined ? undefined : decodeRecord(value).record;
  }

  async #holdsLive(key: string, nowMs: number): Promise<boolean> {
    const held = await this.#send(['GET', key]);
    return held !== null && held !== undefined && decodeRecord(held).record.expiresAtMs > nowMs;
  }

  // EVALSHA first (the script is usually cached); EVAL on NOSCRIPT, which also caches it.
  async #run(command: Script, key: string, args: (string | Buffer)[]): Promise<unknown> {
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
      typeMapping: { [respBlobString]: Buffer },
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

/** PXAT needs an integer; rounding up never deletes a record before its retention ends. */
function expireAtArg(expiresAtMs: number): string {
  return String(Math.ceil(expiresAtMs));
}

/** The fields line of a record: what the claim knew; a completion adds its own line. */
interface RecordFields {
  scopeKey: string;
  recordId: string;
  fingerprint: string;
  leaseExpiresAtMs: number;
  expiresAtMs: number;
  /** Absent on a record written before formats existed (format 1). */
  formatVersion?: number;
  /** Always the last key, so the scripts can replace it. */
  data?: RecordData;
}

interface ResponseFields {
  status: number;
  headers: Record<string, string>;
  expiresAtMs: number;
}

function claimLine(token: string): string {
  return `c:${token}\n`;
}

/** Claim tokens are UUIDs, so a line starting `c:-` is always a release's. */
function releasedLine(): string {
  return claimLine(`-${randomUUID()}`);
}

function isReleasedLine(version: string): boolean {
  return version === claimLine(releasedToken) || version.startsWith('c:-');
}

function encodeClaim(input: ClaimInput, recordId: string, data: RecordData): Buffer {
  const fields: RecordFields = {
    scopeKey: input.scopeKey,
    recordId,
    fingerprint: input.fingerprint,
    leaseExpiresAtMs: input.leaseExpiresAtMs,
    expiresAtMs: input.expiresAtMs,
    formatVersion: currentRecordFormatVersion,
    data,
  };
  return Buffer.from(`${claimLine(input.token)}${JSON.stringify(fields)}\n`);
}

/** Splits a stored value into its version line (with its newline) and the record it holds. */
function decodeRecord(value: unknown): { version: string; record: IdempotencyRecord } {
  // Decoding bytes as text would corrupt binary bodies: refuse rather than replay wrong bytes.
  if (!Buffer.isBuffer(value)) throw new Error('the Redis client returned a record as text, not bytes');
  const versionEnd = value.indexOf(newline);
  const fieldsEnd = versionEnd < 0 ? -1 : value.indexOf(newline, versionEnd + 1);
  if (fieldsEnd < 0) throw new Error('a Redis record is not in the format this store writes');
  const version = value.toString('utf8', 0, versionEnd + 1);
  const fields = JSON.parse(value.toString('utf8', versionEnd + 1, fieldsEnd)) as RecordFields;
  const identity = {
    scopeKey: fields.scopeKey,
    recordId: fields.recordId,
    fingerprint: fields.fingerprint,
    formatVersion: fields.formatVersion ?? 1,
    data: fields.data ?? {},
  };
  if (isReleasedLine(version)) {
    return { version, record: { ...identity, state: 'released', expiresAtMs: fields.expiresAtMs } };
  }
  if (version.startsWith('c:')) {
    const record: IdempotencyRecord = {
      ...identity,
      state: 'claimed',
      token: version.slice(2, -1),
      leaseExpiresAtMs: fields.leaseExpiresAtMs,
      expiresAtMs: fields.expiresAtMs,
    };
    return { version, record };
  }
  const responseEnd = value.indexOf(newline, fieldsEnd + 1);
  if (!version.startsWith('d:') || responseEnd < 0)
    throw new Error('a Redis record is not in the format this store writes');
  const response = JSON.parse(value.toString('utf8', fieldsEnd + 1, responseEnd)) as ResponseFields;
  const record: IdempotencyRecord = {
    ...identity,
    state: 'completed',
    expiresAtMs: response.expiresAtMs,
    response: {
      status: response.status,
      headers: response.headers,
      // A copy, so callers never hold a view into the client's reply buffers; Buffer.from draws
      // on Node's pool, several times cheaper than allocating a fresh Uint8Array.
      body: plainBytes(Buffer.from(value.subarray(responseEnd + 1))),
    },
  };
  return { version, record };
}

const newline = 0x0a;

/** The same bytes as a plain Uint8Array view (no copy): callers get the type the contract names. */
function plainBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
