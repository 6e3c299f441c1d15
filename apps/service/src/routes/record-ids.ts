// Ids for the rows a POST creates. With idempotency records outside the business database
// (Redis), a request that outlived its lease can commit after a takeover ran it again, so the
// id comes from the record (the same for every run of one key) and the second insert finds
// the first run's row. With records in the database the fenced commit rules a second run out,
// and a fresh id keeps a broken fence visible as a duplicate (what `retrysafe chaos` counts).
import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

export interface WriteRouteOptions {
  /** Idempotency records live outside the business database: key created rows on the record. */
  keyWritesOnRecord: boolean;
}

/** The id for a row this request creates, and whether an existing row with it is this key's own. */
export function idForCreate(
  request: FastifyRequest,
  options: WriteRouteOptions,
): { id: string; fromRecord: boolean } {
  const recordId = options.keyWritesOnRecord ? request.idempotency?.recordId : undefined;
  return recordId === undefined
    ? { id: randomUUID(), fromRecord: false }
    : { id: recordId, fromRecord: true };
}
