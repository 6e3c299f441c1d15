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
  const head = `${input.method.toUpperCase()}\n${input.path}\n`;
  const text = canonicalBodyText(input);
  // One update per request where possible: each call into the hash costs more than the text.
  const hash =
    text === undefined
      ? createHash('sha256').update(`${head}bytes\n`).update(input.body)
      : createHash('sha256').update(`${head}tree\n${text}`);
  return `${fingerprintVersionPrefix}${hash.digest('base64url')}`;
}

export interface RawFingerprintInput {
  method: string;
  /** The concrete request path (without query). */
  path: string;
  body: Uint8Array;
  /** The Content-Type header as sent, if any. */
  contentType: string | undefined;
  /**
   * The JSON body as the framework already parsed it, if it did: saves parsing the bytes
   * again (the canonical form is the same). Ignored for any other media type.
   */
  parsedJson?: unknown;
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

const notJson = Symbol('not JSON');
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The canonical text of a JSON or form body, or undefined when it is compared as bytes. */
function canonicalBodyText(input: RawFingerprintInput): string | undefined {
  if (input.body.byteLength === 0) return 'null';
  const mediaType = input.contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType === 'application/x-www-form-urlencoded') {
    try {
      return canonicalText(parseFormTree(decoder.decode(input.body)));
    } catch {
      return undefined;
    }
  }
  if (!isJsonMediaType(input.contentType)) return undefined;
  const parsed = input.parsedJson !== undefined ? input.parsedJson : parseJson(input.body);
  return parsed === notJson ? undefined : canonicalText(parsed);
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
 * The canonical tree written straight out as JSON text: object keys sorted, scalars as
 * their text, null kept. Lists (arrays, or maps keyed 0…n-1 as forms write them) are maps
 * from index to item, and a one-item list is its item: a form cannot tell `tags=x` from a
 * list of one. Written without building the tree: it runs on every keyed request.
 */
function canonicalText(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'object') return quoted(String(value));
  if (Array.isArray(value)) return listText(value);
  const keys = Object.keys(value);
  if (keys[0] === '0' && keys.every((key, index) => key === String(index))) {
    return listText(Object.values(value));
  }
  keys.sort();
  let out = '{';
  for (const key of keys) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${quoted(key)}:${canonicalText(item)}`;
  }
  return `${out}}`;
}

/** A JSON string literal; the common case (nothing to escape) without JSON.stringify. */
function quoted(text: string): string {
  return needsEscape.test(text) ? JSON.stringify(text) : `"${text}"`;
}
// Quotes, backslashes, control characters and any UTF-16 surrogate (JSON.stringify escapes lone ones).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped.
const needsEscape = /["\\\u0000-\u001f\ud800-\udfff]/;

function listText(items: unknown[]): string {
  if (items.length === 1) return canonicalText(items[0]);
  // Index keys sort as text ("10" before "2"), as the keys of a form-written list do.
  const indices = items.map((_, index) => String(index));
  if (items.length > 10) indices.sort();
  let out = '{';
  for (const index of indices) {
    const item = items[Number(index)];
    if (item === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}"${index}":${canonicalText(item)}`;
  }
  return `${out}}`;
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
        const next = (typeof child === 'object' && child !== null ? child : {}) as Record<string, unknown>;
        node[segment] = next;
        node = next;
      }
    }
  }
  return root;
}
