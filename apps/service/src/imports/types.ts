// A bulk import of orders: what is stored of it, what each batch reports, and the repository
// both databases implement. The work itself is an operation (retrysafe/operations) whose job
// imports the input in batches, each batch a step of that job.
import type { FieldError } from 'retrysafe/http';
import type { Page } from '../data/types.js';

/** The import as recorded by the request that started it; its id is its operation's. */
export interface ImportRecord {
  tenant: string;
  id: string;
  /** How many orders the request held (valid or not). */
  total: number;
  /** Recorded for the webhooks issue to deliver when the operation ends; not called here. */
  callbackUrl: string | null;
  createdAt: string;
}

/** An order of the input that was not imported: its 0-based index and why. */
export interface ImportOrderError {
  index: number;
  errors: FieldError[];
}

/** What one batch did, stored with its orders in the batch's transaction. */
export interface ImportBatchResult {
  created: number;
  failed: number;
  errors: ImportOrderError[];
}

/** The import's result: every batch written so far, errors by index. */
export type ImportResult = ImportBatchResult;

export interface ImportRepository<Tx> {
  /** Records the import and its input (the orders as JSON text) in the request's transaction. */
  insert(tx: Tx, record: ImportRecord, input: string): Promise<void>;
  get(tenant: string, id: string): Promise<ImportRecord | undefined>;
  /** The input's orders; undefined once the import finished (the input is dropped then). */
  input(tx: Tx, tenant: string, id: string): Promise<unknown[] | undefined>;
  /**
   * Tags the batch's orders (inserted in `tx` just before) with the import and stores the
   * batch's result, in `tx`: the batch's step commits the orders and their result or neither.
   */
  writeBatch(
    tx: Tx,
    record: Pick<ImportRecord, 'tenant' | 'id'>,
    batch: number,
    orderIds: string[],
    result: ImportBatchResult,
  ): Promise<void>;
  /** Drops the input once every batch is written: the result and the orders stay. */
  finish(tx: Tx, tenant: string, id: string): Promise<void>;
  result(tenant: string, id: string): Promise<ImportResult>;
  /** The ids of the import's orders, oldest first, paged by the orders' sequence. */
  orderIds(tenant: string, importId: string, afterSeq: number, limit: number): Promise<Page<string>>;
}
