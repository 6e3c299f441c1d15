// Turning a handler's answer into the exact bytes that are stored and replayed.

import { type ProblemError, problemContentType, problemForStatus } from '../http/problem.js';
import type { StoredResponse } from './store.js';

export interface ResponseDraft {
  status: number;
  headers?: Record<string, string | number | undefined>;
  /** A string or bytes are sent as they are; anything else is serialised as JSON. */
  body?: unknown;
}

const encoder = new TextEncoder();

/**
 * Serialises once, so the first answer and every replay carry identical bytes. With `keep`,
 * only the headers it names (lower-case) are kept.
 */
export function toStoredResponse(draft: ResponseDraft, keep?: ReadonlySet<string>): StoredResponse {
  const headers: Record<string, string> = {};
  const given = draft.headers;
  if (given !== undefined) {
    for (const name in given) {
      const value = given[name];
      const lower = name.toLowerCase();
      if (value !== undefined && (keep === undefined || keep.has(lower))) headers[lower] = String(value);
    }
  }
  let body: Uint8Array;
  if (draft.body === undefined || draft.body === null) {
    body = new Uint8Array(0);
  } else if (draft.body instanceof Uint8Array) {
    body = draft.body;
  } else if (typeof draft.body === 'string') {
    body = encoder.encode(draft.body);
  } else {
    body = encoder.encode(JSON.stringify(draft.body));
    headers['content-type'] ??= 'application/json; charset=utf-8';
  }
  return { status: draft.status, headers, body };
}

/** A problem as an answer: its status, `application/problem+json` body and extra headers. */
export function problemResponse(error: ProblemError): StoredResponse {
  return {
    status: error.status,
    headers: { ...error.headers, 'content-type': problemContentType },
    body: encoder.encode(JSON.stringify(error.toProblem())),
  };
}

/** The answer to a failure nobody meant: a 500 problem that reveals nothing of it. */
export function serverErrorResponse(rolledBack = true): StoredResponse {
  const problem = problemForStatus(
    500,
    rolledBack
      ? 'Something went wrong on our side; nothing was saved. Try again.'
      : 'Something went wrong on our side; some of this request may have been saved. Retry with the same Idempotency-Key to finish it.',
    'server-error',
  );
  return {
    status: 500,
    headers: { 'content-type': problemContentType },
    body: encoder.encode(JSON.stringify(problem)),
  };
}
