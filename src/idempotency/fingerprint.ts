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
