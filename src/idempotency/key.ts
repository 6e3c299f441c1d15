// Parses the Idempotency-Key header: a Structured Field string ("abc") or a bare token (abc).
import { IdempotencyKeyInvalidError } from './errors.js';

export const maxIdempotencyKeyLength = 255;

/**
 * Returns the key, or undefined when the header is absent.
 * Throws IdempotencyKeyInvalidError for anything that is not 1–255 printable ASCII without commas.
 */
export function parseIdempotencyKey(
  raw: string | string[] | undefined,
  headerName = 'Idempotency-Key',
): string | undefined {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) {
    if (raw.length !== 1) throw new IdempotencyKeyInvalidError(headerName, 'was sent more than once');
    return parseIdempotencyKey(raw[0], headerName);
  }
  const value = raw.trim();
  const key = value.startsWith('"') ? unquoteStructuredString(value, headerName) : value;
  if (key.length === 0) throw new IdempotencyKeyInvalidError(headerName, 'is empty');
  if (key.length > maxIdempotencyKeyLength) {
    throw new IdempotencyKeyInvalidError(headerName, `is ${key.length} characters long`);
  }
  if (!/^[\x20-\x7E]+$/.test(key)) {
    throw new IdempotencyKeyInvalidError(headerName, 'contains characters outside printable ASCII');
  }
  if (key.includes(',')) throw new IdempotencyKeyInvalidError(headerName, 'contains a comma');
  if (!value.startsWith('"') && /\s/.test(key)) {
    throw new IdempotencyKeyInvalidError(headerName, 'contains white space outside a quoted string');
  }
  return key;
}

/** RFC 8941 §3.3.3 sf-string: DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE. */
function unquoteStructuredString(value: string, headerName: string): string {
  if (value.length < 2 || !value.endsWith('"')) {
    throw new IdempotencyKeyInvalidError(headerName, 'opens a quoted string it does not close');
  }
  let out = '';
  for (let i = 1; i < value.length - 1; i++) {
    const ch = value[i]!;
    if (ch === '\\') {
      // The last character is the closing quote: escaping it leaves the string unclosed.
      if (i + 1 === value.length - 1) {
        throw new IdempotencyKeyInvalidError(headerName, 'opens a quoted string it does not close');
      }
      const next = value[i + 1];
      if (next !== '"' && next !== '\\') {
        throw new IdempotencyKeyInvalidError(headerName, 'has an invalid escape in its quoted string');
      }
      out += next;
      i++;
    } else if (ch === '"') {
      throw new IdempotencyKeyInvalidError(headerName, 'has an unescaped quote inside its quoted string');
    } else {
      out += ch;
    }
  }
  return out;
}
