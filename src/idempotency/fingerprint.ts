// Request fingerprints: what "the same request" means. Key order and JSON-vs-form encoding
// are erased by fingerprinting the parsed, canonicalised body rather than its bytes.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every depth, so `{a,b}` and `{b,a}` serialise alike. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) sorted[key] = sortKeys(item);
    }
    return sorted;
  }
  return value;
}

export interface FingerprintInput {
  method: string;
  /** The concrete request path (without query), e.g. `/orders`. */
  path: string;
  /** The parsed request body; undefined when there is none. */
  body: unknown;
}

/** sha256 over method, path and canonical body, base64url. */
export function fingerprintRequest(input: FingerprintInput): string {
  return createHash('sha256')
    .update(canonicalJson([input.method.toUpperCase(), input.path, input.body ?? null]))
    .digest('base64url');
}

/**
 * The fingerprint of a raw request, as the lifecycle takes it. Bodies are compared by meaning,
 * not bytes: JSON and HTML-form bodies become one canonical tree (object keys sorted, lists
 * as index-keyed maps, every scalar as its text), so `{"b":2,"a":[1,2]}`, `{"a":["1","2"],"b":"2"}`
 * and `a[0]=1&a[1]=2&b=2` are the same request. Any other body (or JSON that does not parse) is
 * compared byte for byte. Prefixed `v2:` so records fingerprinted the first-wave way (from
 * the parsed JSON body, see `fingerprintRequest`) are still recognised; see `isLegacyFingerprint`.
 */
export function fingerprintRawRequest(input: RawFingerprintInput): string {
  const hash = createHash('sha256').update(`${input.method.toUpperCase()}\n${input.path}\n`);
  const tree = canonicalBodyTree(input.body, input.contentType);
  if (tree === bytesBody) hash.update('bytes\n').update(input.body);
  else hash.update('tree\n').update(JSON.stringify(tree));
  return `${fingerprintVersionPrefix}${hash.digest('base64url')}`;
}

export interface RawFingerprintInput {
  method: string;
  /** The concrete request path (without query). */
  path: string;
  body: Uint8Array;
  /** The Content-Type header as sent, if any. */
  contentType: string | undefined;
}

const fingerprintVersionPrefix = 'v2:';

/** Whether a stored fingerprint was made by `fingerprintRequest` (first-wave records). */
export function isLegacyFingerprint(fingerprint: string): boolean {
  return !fingerprint.startsWith(fingerprintVersionPrefix);
}

/**
 * The first-wave fingerprint of a raw request, for comparing with records written before
 * `fingerprintRawRequest` existed: only JSON bodies can be reproduced (form bodies were
 * coerced by a route schema the engine does not know), so anything else yields undefined.
 */
export function legacyFingerprint(input: RawFingerprintInput): string | undefined {
  if (input.body.byteLength === 0) return fingerprintRequest({ ...input, body: undefined });
  if (!isJsonMediaType(input.contentType)) return undefined;
  const parsed = parseJson(input.body);
  return parsed === notJson ? undefined : fingerprintRequest({ ...input, body: parsed });
}

const bytesBody = Symbol('bytes');
const notJson = Symbol('not JSON');
const decoder = new TextDecoder('utf-8', { fatal: true });

function canonicalBodyTree(body: Uint8Array, contentType: string | undefined): unknown {
  if (body.byteLength === 0) return null;
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType === 'application/x-www-form-urlencoded') {
    try {
      return canonicalTree(parseFormTree(decoder.decode(body)));
    } catch {
      return bytesBody;
    }
  }
  if (!isJsonMediaType(contentType)) return bytesBody;
  const parsed = parseJson(body);
  return parsed === notJson ? bytesBody : canonicalTree(parsed);
}

function isJsonMediaType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(body));
  } catch {
    return notJson;
  }
}

/**
 * Sorted keys, scalars as text, null kept. Lists (arrays, or maps keyed 0…n-1 as forms write
 * them) become maps from index to item, and a one-item list is its item: a form cannot tell
 * `tags=x` from a list of one.
 */
function canonicalTree(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object') return String(value);
  const items = listItems(value);
  if (items?.length === 1) return canonicalTree(items[0]);
  const entries: [string, unknown][] = items
    ? items.map((item, index) => [String(index), item])
    : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (item !== undefined) out[key] = canonicalTree(item);
  }
  return out;
}

function listItems(value: object): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 0 || !keys.every((key, index) => key === String(index))) return undefined;
  return Object.values(value);
}

/**
 * `a=1&b[c]=2&d[]=x&d[]=y&e=p&e=q` → `{a:'1', b:{c:'2'}, d:['x','y'], e:['p','q']}`: the
 * bracket notation HTML forms and qs use. Only the shape matters here, not the types.
 */
function parseFormTree(text: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [name, value] of new URLSearchParams(text)) {
    const open = name.indexOf('[');
    const path =
      open <= 0
        ? [name]
        : [name.slice(0, open), ...Array.from(name.slice(open).matchAll(/\[([^\]]*)\]/g), (m) => m[1] ?? '')];
    let node: Record<string, unknown> = root;
    for (const [index, rawSegment] of path.entries()) {
      const last = index === path.length - 1;
      const segment = rawSegment === '' ? String(Object.keys(node).length) : rawSegment;
      if (last) {
        const existing = node[segment];
        node[segment] =
          existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
      } else {
        const child = node[segment];
        node = (node[segment] = typeof child === 'object' && child !== null ? child : {}) as Record<
          string,
          unknown
        >;
      }
    }
  }
  return root;
}
