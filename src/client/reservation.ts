// POST-PUT reservations (PROTOCOL rule 33): book an id with an empty POST, hand its URL and ETag
// to the caller to keep (so a crashed client resumes at the fill, not with a second booking),
// then PUT the body with If-Match. The PUT is safe to repeat: the same body again gets the same
// 200, a different one 412, so its retries can never make a second order.

import type { PutOptions, WriteOptions } from './call-options.js';
import { fail, type Result } from './result.js';

/** A booked, not yet filled resource. */
export interface Reservation {
  url: string;
  etag: string;
}

/** Options of the fill (a PUT with If-Match); signal, headers, deadline and retries apply to the reservation too. */
export type FillOptions<TData = unknown> = Omit<WriteOptions<TData>, 'query'>;

export interface ReserveAndFillOptions<TData = unknown> extends FillOptions<TData> {
  /**
   * Keep the reservation somewhere that survives a crash before the fill is sent; after a crash,
   * resume with `client.fill(url, etag, body)`. If it throws, nothing is filled and it rejects.
   */
  persist: (url: string, etag: string) => void | Promise<void>;
}

export interface ReservationCalls {
  post: (path: string, body: unknown, options: FillOptions) => Promise<Result<unknown>>;
  put: <TData>(path: string, body: unknown, options: PutOptions<TData>) => Promise<Result<TData>>;
}

export async function reserveAndFill<TData>(
  calls: ReservationCalls,
  reservePath: string,
  body: unknown,
  options: ReserveAndFillOptions<TData>,
): Promise<Result<TData>> {
  const { persist, ...fillOptions } = options;
  const reserveOptions: FillOptions = {};
  for (const name of ['signal', 'headers', 'deadlineMs', 'timeoutMs', 'retry', 'hooks'] as const) {
    if (fillOptions[name] !== undefined) Object.assign(reserveOptions, { [name]: fillOptions[name] });
  }
  // An empty booking may be repeated (keyed like every POST): a spare reservation only expires.
  const reserved = await calls.post(reservePath, {}, reserveOptions);
  if (!reserved.ok) return reserved;
  if (reserved.location === undefined || reserved.etag === undefined) {
    return fail({
      kind: 'bad_response',
      status: reserved.status,
      message: `${reservePath} answered HTTP ${reserved.status} without ${reserved.location === undefined ? 'Location' : 'ETag'}, so there is no reservation to fill; nothing was filled.`,
      sent: 'yes',
      retryable: false,
      attempts: reserved.attempts,
      ...(reserved.location === undefined ? {} : { location: reserved.location }),
    });
  }
  await persist(reserved.location, reserved.etag);
  return fill(calls, reserved.location, reserved.etag, body, fillOptions);
}

/** Fills a reservation (or resumes one a crashed run persisted): PUT with `If-Match: etag`. */
export function fill<TData>(
  calls: ReservationCalls,
  url: string,
  etag: string,
  body: unknown,
  options: FillOptions<TData>,
): Promise<Result<TData>> {
  return calls.put<TData>(url, body, { ...options, ifMatch: etag });
}
