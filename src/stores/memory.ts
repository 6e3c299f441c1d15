// `retrysafe/stores/memory`: an in-process store for tests and single-process demos.
// It holds no business data, so it has no transaction: the engine completes after the handler.
import {
  type ClaimInput,
  type ClaimResult,
  type CompleteInput,
  currentRecordFormatVersion,
  type IdempotencyRecord,
  type IdempotencyStore,
  type SaveDataInput,
  type StoredResponse,
  takeoverRecordId,
} from '../idempotency/store.js';

export class MemoryIdempotencyStore implements IdempotencyStore<undefined> {
  readonly records = new Map<string, IdempotencyRecord>();
  /** The scope each record was created under, and how many records each scope holds. */
  readonly #scopeOf = new Map<string, string>();
  readonly #scopeRecords = new Map<string, number>();

  async claim(input: ClaimInput): Promise<ClaimResult> {
    const existing = this.records.get(input.scopeKey);
    const limit = input.scopeLimit;
    if (existing === undefined && limit !== undefined) {
      const held = this.#scopeRecords.get(limit.scope) ?? 0;
      if (held >= limit.maxRecords) return { claimed: false, scopeFull: true };
      this.#scopeRecords.set(limit.scope, held + 1);
      this.#scopeOf.set(input.scopeKey, limit.scope);
    }
    const recordId = existing === undefined ? input.recordId : takeoverRecordId(existing, input);
    if (recordId === undefined) return { claimed: false, record: copyRecord(existing!) };
    if (limit !== undefined && !this.#scopeOf.has(input.scopeKey)) {
      // A record written while no bound was given, taken over under one: counted from now on.
      this.#scopeRecords.set(limit.scope, (this.#scopeRecords.get(limit.scope) ?? 0) + 1);
      this.#scopeOf.set(input.scopeKey, limit.scope);
    }
    // A lease takeover keeps what the earlier run checkpointed; a new record starts from the claim's.
    const data =
      existing !== undefined && recordId === existing.recordId ? existing.data : (input.data ?? {});
    this.records.set(input.scopeKey, {
      formatVersion: currentRecordFormatVersion,
      data: structuredClone(data),
      state: 'claimed',
      scopeKey: input.scopeKey,
      recordId,
      fingerprint: input.fingerprint,
      token: input.token,
      leaseExpiresAtMs: input.leaseExpiresAtMs,
      expiresAtMs: input.expiresAtMs,
    });
    return { claimed: true, recordId, data: structuredClone(data) };
  }

  async complete(input: CompleteInput): Promise<boolean> {
    const existing = this.records.get(input.scopeKey);
    if (existing?.state !== 'claimed' || existing.token !== input.token) return false;
    this.records.set(input.scopeKey, {
      formatVersion: currentRecordFormatVersion,
      data: structuredClone(input.data ?? existing.data),
      state: 'completed',
      scopeKey: input.scopeKey,
      recordId: existing.recordId,
      fingerprint: existing.fingerprint,
      expiresAtMs: input.expiresAtMs,
      response: copyResponse(input.response),
    });
    return true;
  }

  async saveData(input: SaveDataInput): Promise<boolean> {
    const existing = this.records.get(input.scopeKey);
    if (existing?.state !== 'claimed' || existing.token !== input.token) return false;
    this.records.set(input.scopeKey, {
      ...existing,
      formatVersion: currentRecordFormatVersion,
      data: structuredClone(input.data),
    });
    return true;
  }

  async release(scopeKey: string, token: string): Promise<void> {
    const existing = this.records.get(scopeKey);
    if (existing?.state !== 'claimed' || existing.token !== token) return;
    // Kept, not deleted: a slow run of this key may still commit under its id.
    this.records.set(scopeKey, {
      formatVersion: existing.formatVersion,
      data: existing.data,
      state: 'released',
      scopeKey,
      recordId: existing.recordId,
      fingerprint: existing.fingerprint,
      expiresAtMs: existing.expiresAtMs,
    });
  }

  async reap(nowMs: number, limit: number): Promise<number> {
    let deleted = 0;
    for (const [scopeKey, record] of this.records) {
      if (deleted >= limit) break;
      if (record.expiresAtMs <= nowMs) {
        this.records.delete(scopeKey);
        const scope = this.#scopeOf.get(scopeKey);
        if (scope !== undefined) {
          this.#scopeOf.delete(scopeKey);
          this.#scopeRecords.set(scope, (this.#scopeRecords.get(scope) ?? 1) - 1);
        }
        deleted++;
      }
    }
    return deleted;
  }
}

/** Callers get copies, so changing a replayed response never changes what later replays send. */
function copyRecord(record: IdempotencyRecord): IdempotencyRecord {
  const data = structuredClone(record.data);
  return record.state === 'completed'
    ? { ...record, data, response: copyResponse(record.response) }
    : { ...record, data };
}

function copyResponse(response: StoredResponse): StoredResponse {
  return { status: response.status, headers: { ...response.headers }, body: response.body.slice() };
}

export function createMemoryStore(): MemoryIdempotencyStore {
  return new MemoryIdempotencyStore();
}
