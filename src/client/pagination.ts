// Pagination over `Link: <…>; rel="next"` (RFC 8288): an async iterator that fetches one page
// per step, each a call of its own (own deadline, own retries), at most `maxPages` pages.

import type { GetOptions } from './call-options.js';
import type { Result } from './result.js';

/** Bounds a server whose next links never end (or loop). */
export const defaultMaxPages = 100;

export interface PageOptions<TData = unknown> extends GetOptions<TData> {
  /** Stop after this many pages (default 100). */
  maxPages?: number;
}

/**
 * The `rel="next"` target of a Link header, or undefined. Accepts several links in one header and
 * several relation types in one `rel` ("next last"), as RFC 8288 §3.3 allows.
 */
export function nextLink(header: string | null): string | undefined {
  if (header === null) return undefined;
  for (const match of header.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(match[2] ?? '');
    const types = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (types.includes('next')) return match[1];
  }
  return undefined;
}

/**
 * Yields each page's result in order; a failure is yielded and ends the iteration, so the caller
 * sees why it stopped. A next link to another origin also ends it, as a `bad_response`, because
 * the client's credentials go to its own origin only.
 */
export async function* paginate<TData>(
  origin: string,
  path: string,
  options: PageOptions<TData>,
  get: (path: string, options: GetOptions<TData>) => Promise<Result<TData>>,
): AsyncGenerator<Result<TData>, void, undefined> {
  const { maxPages = defaultMaxPages, ...firstOptions } = options;
  if (!Number.isInteger(maxPages) || maxPages < 1)
    throw new TypeError('pages: maxPages must be a whole number of at least 1');
  // The query belongs to the first request; a next link carries its own.
  const { query: _, ...nextOptions } = firstOptions;
  let current: string | undefined = path;
  for (let page = 0; current !== undefined && page < maxPages; page++) {
    const result: Result<TData> = await get(current, page === 0 ? firstOptions : nextOptions);
    yield result;
    if (!result.ok) return;
    const next = nextLink(result.headers.get('link'));
    if (next === undefined) return;
    const target: URL = new URL(next, new URL(current, origin));
    if (target.origin !== origin) {
      yield {
        ok: false,
        error: {
          kind: 'bad_response',
          status: result.status,
          message: `The next page is on another origin (${target.origin}); it was not fetched, so your credentials stayed here.`,
          sent: 'yes',
          retryable: false,
          attempts: 0,
          location: target.href,
        },
      };
      return;
    }
    current = `${target.pathname}${target.search}`;
  }
}
