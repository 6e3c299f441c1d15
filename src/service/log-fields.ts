// Log fields derived from request values that must not be logged as they are: an
// Idempotency-Key may carry customer-chosen text, so logs get a short one-way fingerprint.
import { createHash } from 'node:crypto';

/** Hex characters kept: 64 bits, plenty to tell one request's lines from another's. */
export const logFingerprintLength = 16;

/**
 * The first 16 hex characters of the value's SHA-256, or undefined for no value. An operator
 * holding a key can compute it and find that key's log lines; the log alone does not give the
 * key back. (A short, guessable key can still be confirmed by hashing a guess.)
 */
export function logFingerprint(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return createHash('sha256').update(value).digest('hex').slice(0, logFingerprintLength);
}
