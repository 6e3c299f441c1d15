// A 202 Accepted answer names the operation that does the work (PROTOCOL rule 21): where to poll
// it (`Operation-Location`, else `Location`) and how long the server asks to wait first.

import { parseRetryAfterMs } from './retry.js';

/** The long-running operation a 202 started; pass it (or just its `url`) to `client.poll()`. */
export interface OperationRef {
  /** The operation monitor as the server sent it (usually a path such as `/operations/42`). */
  url: string;
  /** The server's `Retry-After` on the 202, when it sent one. */
  retryAfterMs?: number;
}

/** The operation of a 202 answer, or undefined when the answer is not a 202 or names none. */
export function operationOf(status: number, headers: Headers): OperationRef | undefined {
  if (status !== 202) return undefined;
  const url = headers.get('operation-location') ?? headers.get('location');
  if (url === null || url.trim() === '') return undefined;
  const retryAfterMs = parseRetryAfterMs(headers.get('retry-after'), Date.now());
  return { url: url.trim(), ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}
