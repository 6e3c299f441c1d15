// Redirects under the client's control: fetch keeps every header but Authorization on a
// cross-origin redirect, so an `x-api-key` would follow a 307 to anyone. By default the client
// follows redirects itself, only within its own origin, and hands any other one back unfollowed.

/**
 * - `same-origin` (default): follow redirects that stay on the client's origin; a redirect
 *   elsewhere is returned as a failure with its `location`, and nothing is sent there.
 * - `follow`: fetch's own behaviour (it drops only `Authorization` when the origin changes).
 */
export type RedirectPolicy = 'same-origin' | 'follow';

export const redirectPolicies: readonly RedirectPolicy[] = ['same-origin', 'follow'];

/** The fetch standard's limit, so a redirect loop ends the same way it would without us. */
export const maxRedirects = 20;

const redirectStatuses = new Set([301, 302, 303, 307, 308]);

export interface Hop {
  url: string;
  method: string;
  /** False when the redirect turns the request into a GET, which carries no body. */
  keepsBody: boolean;
}

/**
 * The next request for a redirect that stays on `origin`, or undefined when the response is not
 * a redirect or leaves the origin (the caller then sees the 3xx itself).
 */
export function sameOriginHop(
  response: Response,
  currentUrl: string,
  method: string,
  origin: string,
): Hop | undefined {
  if (!redirectStatuses.has(response.status)) return undefined;
  const location = response.headers.get('location');
  if (location === null) return undefined;
  let target: URL;
  try {
    target = new URL(location, currentUrl);
  } catch {
    return undefined;
  }
  if (target.origin !== origin) return undefined;
  // As fetch does (WHATWG fetch, "HTTP-redirect fetch"): 303 and a POST on 301/302 become a GET.
  const becomesGet =
    (response.status === 303 && method !== 'HEAD') ||
    ((response.status === 301 || response.status === 302) && method === 'POST');
  return { url: target.href, method: becomesGet ? 'GET' : method, keepsBody: !becomesGet };
}

/** Whether a 3xx the client did not follow points at another origin, and where. */
export function crossOriginTarget(headers: Headers, requestUrl: string): string | undefined {
  const location = headers.get('location');
  if (location === null) return undefined;
  try {
    const target = new URL(location, requestUrl);
    return target.origin === new URL(requestUrl).origin ? undefined : target.href;
  } catch {
    return undefined;
  }
}
