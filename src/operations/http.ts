// Framework-free HTTP for operations (PROTOCOL rules 21, 31, 32): the 202 that starts one, the
// monitor's representation with its strong ETag and Retry-After, the cancel's answer, and
// `Prefer: wait=N`. Each returns a response draft that `reply.idempotent` / the lifecycle stores
// and replays as is (location, operation-location and retry-after are replayed headers).
import { strongEtag } from '../http/etag.js';
import { ConflictError, NotFoundError, type ProblemError, problemContentType } from '../http/problem.js';
import { isTerminal } from './status.js';
import type { CancelOutcome, Operation, OperationError, OperationStatus } from './types.js';

export const defaultOperationsBasePath = '/operations';
/** How soon a client should look again at work that has not ended. */
export const defaultOperationRetryAfterSeconds = 1;
/** `Prefer: wait=N` is honoured up to this many seconds: longer holds a connection (and a proxy's timeout) too long. */
export const maxPreferWaitSeconds = 60;

const jsonContentType = 'application/json; charset=utf-8';

/** The public face of an operation; the scope, job and version stay inside. */
export interface OperationRepresentation {
  id: string;
  kind: string;
  status: OperationStatus;
  createdAt: string;
  lastUpdatedAt: string;
  percentComplete?: number;
  processed?: number;
  total?: number;
  /** Present (true) while a cancel asked for has not taken effect yet. */
  cancelRequested?: true;
  error?: OperationError;
  resourceLocation?: string;
}

/** Built field by field in a fixed order, so equal operations serialise to equal bytes (and ETags). */
export function operationRepresentation(operation: Operation): OperationRepresentation {
  const representation: OperationRepresentation = {
    id: operation.id,
    kind: operation.kind,
    status: operation.status,
    createdAt: new Date(operation.createdAtMs).toISOString(),
    lastUpdatedAt: new Date(operation.updatedAtMs).toISOString(),
  };
  if (operation.percentComplete !== null) representation.percentComplete = operation.percentComplete;
  if (operation.processed !== null) representation.processed = operation.processed;
  if (operation.total !== null) representation.total = operation.total;
  if (operation.cancelRequested && !isTerminal(operation.status)) representation.cancelRequested = true;
  if (operation.status === 'failed' && operation.error !== null) representation.error = operation.error;
  if (operation.status === 'succeeded' && operation.resourceLocation !== null)
    representation.resourceLocation = operation.resourceLocation;
  return representation;
}

/** The JSON text of the representation: the body every helper here sends. */
export function operationBody(operation: Operation): string {
  return JSON.stringify(operationRepresentation(operation));
}

/** A strong ETag of the representation's bytes: it changes whenever what a client sees changes. */
export function operationEtag(operation: Operation): string {
  return strongEtag(operationBody(operation));
}

/** `<basePath>/<id>`; ids are URL-safe already (letters, digits, `. _ : -`). */
export function operationLocation(id: string, basePath: string = defaultOperationsBasePath): string {
  return `${basePath.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
}

export interface OperationResponseOptions {
  /** Default `/operations`. */
  basePath?: string;
  /** Default 1. */
  retryAfterSeconds?: number;
}

export interface OperationResponseDraft {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The 202 Accepted that starts long-running work (rule 21): `Location` and `Operation-Location`
 * at the operation, `Retry-After`, and the operation as it was created. Returned from the
 * handler that created it, it is stored with the idempotency record, so a retried POST with the
 * same key and body replays this same 202 and operation id (rule 31).
 */
export function acceptedResponse(operation: Operation, options: OperationResponseOptions = {}) {
  const location = operationLocation(operation.id, options.basePath);
  return {
    status: 202 as const,
    headers: {
      location,
      'operation-location': location,
      'retry-after': String(retryAfter(options.retryAfterSeconds)),
      'content-type': jsonContentType,
    },
    body: operationBody(operation),
  };
}

export interface MonitorResponseOptions {
  retryAfterSeconds?: number;
  /** The `wait` that was honoured, echoed as `Preference-Applied` (RFC 7240 §3). */
  waitedSeconds?: number;
}

/** The monitor's 200: the representation, its strong ETag, and `Retry-After` unless it has ended (rule 32). */
export function operationResponse(
  operation: Operation,
  options: MonitorResponseOptions = {},
): OperationResponseDraft {
  const body = operationBody(operation);
  const headers: Record<string, string> = { etag: strongEtag(body), 'content-type': jsonContentType };
  if (!isTerminal(operation.status)) headers['retry-after'] = String(retryAfter(options.retryAfterSeconds));
  if (options.waitedSeconds !== undefined) headers['preference-applied'] = `wait=${options.waitedSeconds}`;
  return { status: 200, headers, body };
}

/**
 * The answer to `POST {operation}/cancel` (rule 32): 202 while the cancel takes effect, 200 with
 * the operation once canceled, 409 when it already ended otherwise, 404 when absent (or another
 * scope's).
 */
export function cancelResponse(
  outcome: CancelOutcome,
  options: OperationResponseOptions = {},
): OperationResponseDraft {
  if (outcome.outcome === 'not-found') return problem(new NotFoundError('no such operation'));
  const { operation } = outcome;
  if (operation.status === 'canceled') return operationResponse(operation, options);
  if (isTerminal(operation.status)) {
    return problem(
      new ConflictError(
        `the operation ${operation.status} already; it can no longer be canceled`,
        'operation-ended',
        {
          operationStatus: operation.status,
        },
      ),
    );
  }
  const body = operationBody(operation);
  return {
    status: 202,
    headers: {
      location: operationLocation(operation.id, options.basePath),
      'retry-after': String(retryAfter(options.retryAfterSeconds)),
      'content-type': jsonContentType,
    },
    body,
  };
}

/**
 * The `wait` preference of a `Prefer` header (RFC 7240 §4.3), in seconds, capped at
 * `maxSeconds` (default 60). Undefined when absent or malformed (a preference that cannot be
 * read is ignored, as the RFC asks). Only the first `wait` counts (§2).
 */
export function parsePreferWait(
  header: string | readonly string[] | undefined,
  maxSeconds: number = maxPreferWaitSeconds,
): number | undefined {
  if (header === undefined) return undefined;
  const values = typeof header === 'string' ? [header] : header;
  for (const value of values) {
    for (const preference of value.split(',')) {
      const [token] = preference.split(';');
      const match = /^\s*wait\s*(?:=\s*(.*?))?\s*$/i.exec(token ?? '');
      if (match === null) continue;
      const raw = match[1]?.startsWith('"') && match[1].endsWith('"') ? match[1].slice(1, -1) : match[1];
      if (raw === undefined || !/^\d{1,10}$/.test(raw)) return undefined;
      return Math.min(Number(raw), maxSeconds);
    }
  }
  return undefined;
}

function retryAfter(seconds: number = defaultOperationRetryAfterSeconds): number {
  if (!Number.isInteger(seconds) || seconds < 0)
    throw new TypeError(`retryAfterSeconds must be a whole number ≥ 0, got ${seconds}`);
  return seconds;
}

function problem(error: ProblemError): OperationResponseDraft {
  return {
    status: error.status,
    headers: { ...error.headers, 'content-type': problemContentType },
    body: JSON.stringify(error.toProblem()),
  };
}
