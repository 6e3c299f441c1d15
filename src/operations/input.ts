// Checking what callers hand the stores, once for both dialects: ids, progress, errors, cursors.
import { randomUUID } from 'node:crypto';
import { BadRequestError } from '../http/problem.js';
import { defaultListLimit, maxListLimit } from './options.js';
import type {
  CreateOperationInput,
  OperationError,
  OperationJobPayload,
  OperationProgress,
} from './types.js';

/** Ids go into URLs (`/operations/{id}`): no `/`, no spaces, no percent-encoding needed. */
const idPattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const maxScopeLength = 200;
const maxKindLength = 100;
const maxCodeLength = 100;
const maxMessageLength = 2000;
const maxResourceLocationLength = 2000;

export interface NormalizedCreate {
  id: string;
  scope: string;
  kind: string;
  jobId: string;
  job: { topic: string; payload: OperationJobPayload; maxAttempts?: number; runAt?: Date | number };
}

/** The job of operation `id`: one per operation, so a second create never enqueues twice. */
export function operationJobId(id: string): string {
  return `operation:${id}`;
}

export function normalizeCreate(input: CreateOperationInput): NormalizedCreate {
  const id = input.id ?? randomUUID();
  if (typeof id !== 'string' || !idPattern.test(id))
    throw new TypeError(`operation id ${String(id)} must be 1–128 letters, digits and . _ : - (no /)`);
  const scope = text('scope', input.scope, maxScopeLength);
  const kind = text('kind', input.kind, maxKindLength);
  const jobId = operationJobId(id);
  const job: NormalizedCreate['job'] = {
    topic: input.jobTopic,
    payload: { operationId: id, input: input.jobPayload },
  };
  if (input.jobMaxAttempts !== undefined) job.maxAttempts = input.jobMaxAttempts;
  if (input.runAt !== undefined) job.runAt = input.runAt;
  return { id, scope, kind, jobId, job };
}

export interface NormalizedProgress {
  percentComplete: number | null;
  processed: number | null;
  total: number | null;
}

export function normalizeProgress(progress: OperationProgress): NormalizedProgress {
  const { percentComplete, processed, total } = progress;
  if (
    percentComplete !== undefined &&
    (typeof percentComplete !== 'number' ||
      !Number.isFinite(percentComplete) ||
      percentComplete < 0 ||
      percentComplete > 100)
  )
    throw new TypeError(`percentComplete must be a number from 0 to 100, got ${percentComplete}`);
  for (const [name, value] of [
    ['processed', processed],
    ['total', total],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0))
      throw new TypeError(`${name} must be a whole number ≥ 0, got ${value}`);
  }
  return { percentComplete: percentComplete ?? null, processed: processed ?? null, total: total ?? null };
}

export function normalizeError(error: OperationError): OperationError {
  return {
    code: text('error code', error?.code, maxCodeLength),
    message: clip(
      typeof error?.message === 'string' ? error.message : String(error?.message),
      maxMessageLength,
    ),
  };
}

export function normalizeResourceLocation(location: string): string {
  return text('resourceLocation', location, maxResourceLocationLength);
}

export function normalizeLimit(limit: number | undefined): number {
  const value = limit ?? defaultListLimit;
  if (!Number.isInteger(value) || value < 1 || value > maxListLimit)
    throw new BadRequestError(`limit must be a whole number from 1 to ${maxListLimit}`, 'invalid-limit');
  return value;
}

/** A position in a newest-first list: the last operation of the page shown. */
export interface ListPosition {
  createdAtMs: number;
  id: string;
}

export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify([position.createdAtMs, position.id])).toString('base64url');
}

/** A cursor a client hands back; a tampered or foreign one is a 400, never a wrong page. */
export function decodeCursor(cursor: string): ListPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      Number.isSafeInteger(value[0]) &&
      typeof value[1] === 'string' &&
      idPattern.test(value[1])
    )
      return { createdAtMs: value[0] as number, id: value[1] };
  } catch {
    // Falls through to the one error below.
  }
  throw new BadRequestError(
    'the cursor is not one this list handed out: start again without it',
    'invalid-cursor',
  );
}

function text(what: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max)
    throw new TypeError(`${what} must be a string of 1–${max} characters, got ${JSON.stringify(value)}`);
  return value;
}

function clip(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}
