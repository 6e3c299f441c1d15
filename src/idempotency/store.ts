// The contract every idempotency store implements: a few atomic primitives, plus the one
// takeover rule they all apply. Scoping, fingerprints and lease lengths live in engine.ts.

/** A response exactly as it will be replayed. Header names are lower-case. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** The record format the stores write today. Records written before formats existed read as 1. */
export const currentRecordFormatVersion = 2;

/** The extensible part of a record: JSON that later features (steps, operations) checkpoint into. */
export type RecordData = Record<string, unknown>;

/** Present on every record, whatever its state. */
export interface RecordFormat {
  /** 1: written by a release before record formats (no data part); 2: the current format. */
  formatVersion: number;
  /** `{}` unless a claim, completion or `saveData` wrote something. */
  data: RecordData;
}

export type IdempotencyRecord = RecordFormat &
  (
    | {
        state: 'claimed';
        scopeKey: string;
        recordId: string;
        fingerprint: string;
        token: string;
        leaseExpiresAtMs: number;
        expiresAtMs: number;
      }
    | {
        state: 'completed';
        scopeKey: string;
        recordId: string;
        fingerprint: string;
        expiresAtMs: number;
        response: StoredResponse;
      }
    | {
        /**
         * A claim whose run failed and was released: nobody holds it, and the next claim with
         * the same fingerprint takes it over at once under the same `recordId` (with its
         * `data`), because a slow earlier run of the key may still commit under that id. The
         * SQL and Redis stores write it as a claim with no token and a lease that ended at 0,
         * which releases before this state existed read (and take over) the same way.
         */
        state: 'released';
        scopeKey: string;
        recordId: string;
        fingerprint: string;
        expiresAtMs: number;
      }
  );

export interface ClaimInput {
  scopeKey: string;
  fingerprint: string;
  /** Fencing token of this attempt: completion and release only succeed while it still holds. */
  token: string;
  /** Used when this claim creates a new record; a lease takeover keeps the record's id. */
  recordId: string;
  nowMs: number;
  leaseExpiresAtMs: number;
  expiresAtMs: number;
  /** The data part of a new record (default `{}`); a lease takeover keeps the record's own. */
  data?: RecordData;
  /**
   * The caller (tenant) the record belongs to, and the most records it may hold: a claim that
   * would create a record beyond `maxRecords` answers `scopeFull` instead, atomically with the
   * claim (taking over or reading an existing record never counts). Absent: no bound.
   */
  scopeLimit?: { scope: string; maxRecords: number };
}

export type ClaimResult =
  /** `data`: the record's data part as the claim left it (what an earlier run checkpointed, on a takeover). */
  | { claimed: true; recordId: string; data?: RecordData }
  /** Someone else holds or completed the key; the engine decides what that means. */
  | { claimed: false; record: IdempotencyRecord; scopeFull?: undefined }
  /** The key is new and its scope already holds `scopeLimit.maxRecords` records: nothing was written. */
  | { claimed: false; scopeFull: true; record?: undefined };

export interface CompleteInput {
  scopeKey: string;
  token: string;
  response: StoredResponse;
  expiresAtMs: number;
  /** When given, replaces the record's data part in the same fenced write. */
  data?: RecordData;
}

export interface SaveDataInput {
  scopeKey: string;
  token: string;
  /** Replaces the record's data part as a whole. */
  data: RecordData;
}

export interface IdempotencyStore<Tx = never> {
  /**
   * Atomically: create the record if absent; take it over if it is expired (retention over)
   * or if it is a claim whose lease ran out and whose fingerprint matches; else report it.
   */
  claim(input: ClaimInput): Promise<ClaimResult>;
  /** Fenced: stores the response only while `token` still holds the claim. False otherwise. */
  complete(input: CompleteInput, tx?: Tx): Promise<boolean>;
  /**
   * Fenced: replaces the data part of the record only while `token` still holds its claim
   * (a checkpoint). False when the claim was lost or completed. Every bundled store has it.
   */
  saveData?(input: SaveDataInput, tx?: Tx): Promise<boolean>;
  /**
   * Fenced: lets go of the claim so a retry executes again at once, turning it into a
   * `released` record that keeps its id, fingerprint, data and retention (never deleting it:
   * a run that outlived its lease may still commit writes keyed on that id). No-op when the
   * token lost the claim.
   */
  release(scopeKey: string, token: string): Promise<void>;
  /** Deletes up to `limit` records whose retention ended; returns how many it deleted. */
  reap(nowMs: number, limit: number): Promise<number>;
  /**
   * Present on stores that can hold business rows: runs `work` in one transaction, so the
   * handler's writes and the fenced completion commit or roll back together.
   */
  transaction?<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  close?(): Promise<void>;
}

/**
 * The one takeover rule every store applies (SQL stores in their claim statement, the others
 * through this): a record whose retention ended is gone, and becomes a new record with the
 * claim's fresh id; a claim whose lease lapsed, or a released one, may be taken over by the
 * same request (same fingerprint), which keeps the record's id so downstream keys stay stable
 * for the whole retention. Otherwise the record holds its key and the engine decides what the
 * refusal means.
 */
export function takeoverRecordId(record: IdempotencyRecord, claim: ClaimInput): string | undefined {
  if (record.expiresAtMs <= claim.nowMs) return claim.recordId;
  if (record.fingerprint !== claim.fingerprint) return undefined;
  const free =
    record.state === 'released' || (record.state === 'claimed' && record.leaseExpiresAtMs <= claim.nowMs);
  return free ? record.recordId : undefined;
}

/** The token a released record holds in the SQL and Redis stores: no claim's (those are UUIDs). */
export const releasedToken = '';
