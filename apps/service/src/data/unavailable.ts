// The one answer to "is this error the database being unavailable?": every data path (reads,
// writes, the API-key lookup, /readyz) asks it, so an outage is a 503 problem with Retry-After
// everywhere and never a 500.
import { ProblemError } from 'retrysafe/http';

/** Seconds a caller is told to wait after an outage answer. */
export const unavailableRetryAfterSeconds = 1;

// Node socket errors: the server refused, dropped or never answered the connection.
const socketCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
// SQLSTATEs after which nothing was applied and a retry may succeed: connection exceptions
// (08…), the server shutting down or refusing (57P01–57P05), statement_timeout / cancel
// (57014), lock_timeout (55P03), too many connections (53300), serialization and deadlock (40…).
const retryableSqlStates = /^(08...|57P0[1-5]|57014|55P03|53300|40...)$/;
// SQLite: another connection holds the write lock past busy_timeout.
const sqliteCodes = /^SQLITE_(BUSY|LOCKED)(_|$)/;
// pg raises these as plain Errors without a code.
const pgMessages =
  /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Cannot use a pool after calling end)/;

export function isUnavailable(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  if (error instanceof ProblemError) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (socketCodes.has(code) || sqliteCodes.test(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return retryableSqlStates.test(code);
  }
  if (typeof message === 'string' && pgMessages.test(message)) return true;
  // AggregateError (pg connecting to localhost tries ::1 and 127.0.0.1) and wrapped causes.
  const { errors, cause } = error as { errors?: unknown; cause?: unknown };
  if (Array.isArray(errors) && errors.length > 0 && errors.every(isUnavailable)) return true;
  return cause !== undefined && cause !== error && isUnavailable(cause);
}

/** The database could not be reached or did not answer in time; nothing was changed. */
export class DatabaseUnavailableError extends ProblemError {
  override name = 'DatabaseUnavailableError';
  constructor(cause: unknown) {
    super({
      status: 503,
      type: 'database-unavailable',
      title: 'Service unavailable',
      detail:
        'The database is unavailable or did not answer in time, so nothing was changed. Retry later (with the same Idempotency-Key for a write).',
      headers: { 'retry-after': String(unavailableRetryAfterSeconds) },
      cause,
    });
  }
}

/** `error` as a 503 problem when it is an outage, else unchanged. */
export function asUnavailable(error: unknown): unknown {
  return isUnavailable(error) ? new DatabaseUnavailableError(error) : error;
}

/**
 * `repository` with every method's failure passed through `asUnavailable`. Only for methods
 * that run their statements in a transaction or on their own: an outage error from them means
 * their statements did not take effect.
 */
export function guardUnavailable<T extends object>(repository: T): T {
  const guarded = {} as Record<string, unknown>;
  for (const [name, value] of Object.entries(repository)) {
    guarded[name] =
      typeof value === 'function'
        ? async (...args: unknown[]) => {
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(repository, args);
            } catch (error) {
              throw asUnavailable(error);
            }
          }
        : value;
  }
  return guarded as T;
}

/**
 * The outbox with `enqueue` passed through `asUnavailable` (a statement timeout inside a
 * request's transaction is a 503, not a 500). The queue is a class: its methods live on its
 * prototype, so it is wrapped by a proxy rather than copied like a repository.
 */
export function guardEnqueue<Q extends { enqueue(...args: never[]): Promise<unknown> }>(queue: Q): Q {
  return new Proxy(queue, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (property !== 'enqueue') return value.bind(target);
      return async (...args: unknown[]) => {
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (error) {
          throw asUnavailable(error);
        }
      };
    },
  });
}
