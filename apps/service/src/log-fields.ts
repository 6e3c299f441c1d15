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

/**
 * Errors in logs keep their kind, message, code and stack, nothing else: a driver error's
 * other fields can quote row values (pg's `detail`: "Key (username)=(alice) already exists").
 */
export interface LoggedError {
  type: string;
  message: string;
  stack: string;
  [field: string]: unknown;
}

export function serializeLoggedError(error: unknown): LoggedError {
  if (!(error instanceof Error)) return { type: typeof error, message: '', stack: '' };
  const fields: LoggedError = { type: error.name, message: error.message, stack: error.stack ?? '' };
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'string' || typeof code === 'number') fields.code = code;
  if (typeof statusCode === 'number') fields.statusCode = statusCode;
  return fields;
}

/** The service's pino settings: no Authorization header, and errors without their data. */
export function serviceLoggerOptions(level: string) {
  return { level, redact: ['req.headers.authorization'], serializers: { err: serializeLoggedError } };
}
