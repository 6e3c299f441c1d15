// Turning a handler's answer into the exact bytes that are stored and replayed.

import type { StoredResponse } from './store.js';

export interface ResponseDraft {
  status: number;
  headers?: Record<string, string | number | undefined>;
  /** A string or bytes are sent as they are; anything else is serialised as JSON. */
  body?: unknown;
}

const encoder = new TextEncoder();

/** Serialises once, so the first answer and every replay carry identical bytes. */
export function toStoredResponse(draft: ResponseDraft): StoredResponse {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(draft.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = String(value);
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
