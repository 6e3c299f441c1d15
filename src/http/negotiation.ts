// Content negotiation and client preferences for write answers: `Prefer: return=minimal`
// (RFC 7240), Post/Redirect/Get for HTML forms (303), and `If-None-Match` on reads (304).
import { parseEntityTagList, weakMatch } from './etag.js';

type HeaderValue = string | string[] | undefined;

function joined(value: HeaderValue): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** `Prefer: return=minimal`: the client wants 204 (or an empty body) instead of the representation. */
export function prefersMinimal(prefer: HeaderValue): boolean {
  return /(^|[,;\s])return=minimal\b/i.test(joined(prefer));
}

/**
 * An HTML form post from a browser that accepts HTML: answer with 303 See Other to the
 * created resource (Post/Redirect/Get), not with its JSON.
 */
export function wantsSeeOther(contentType: HeaderValue, accept: HeaderValue): boolean {
  return (
    joined(contentType).toLowerCase().startsWith('application/x-www-form-urlencoded') &&
    joined(accept).toLowerCase().includes('text/html')
  );
}

/** A GET whose `If-None-Match` matches the current ETag (weak comparison, RFC 9110 §13.1.2): 304. */
export function isNotModified(ifNoneMatch: HeaderValue, currentEtag: string): boolean {
  const condition = parseEntityTagList(joined(ifNoneMatch));
  return condition !== undefined && weakMatch(condition, currentEtag);
}
