// Decides from a rejected fetch whether the request can have left this machine. This is the
// one place that knows fetch implementations' error shapes; everything else asks it.

/**
 * Codes that mean no connection was ever made, so no byte of the request reached a server:
 * name resolution failed, nobody listened, no route, or the connect itself timed out.
 */
const neverSentCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EAI_NODATA',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export interface NetworkFailure {
  /** `no` only when the error proves the request never left; anything unknown is `maybe`. */
  sent: 'no' | 'maybe';
  /** The system or undici code, when one was found (e.g. `ECONNRESET`, `UND_ERR_SOCKET`). */
  code: string | undefined;
}

/**
 * Node's fetch (undici) rejects with `TypeError('fetch failed')` whose `cause` carries a `code`;
 * with happy eyeballs the cause may be an AggregateError of one error per address, and then the
 * request was never sent only if every address refused. Browsers reject with a bare TypeError
 * and no detail, so the answer there is always `maybe` — the safe side for a POST without a key.
 * Any other code (ECONNRESET, EPIPE, UND_ERR_SOCKET, UND_ERR_HEADERS_TIMEOUT, TLS errors after
 * the handshake) may come after the request was written, so it is `maybe` too.
 */
export function classifyNetworkFailure(error: unknown): NetworkFailure {
  const codes = collectCodes(error, 0);
  const code = codes[0];
  if (codes.length > 0 && codes.every((c) => neverSentCodes.has(c))) return { sent: 'no', code };
  return { sent: 'maybe', code };
}

/** Codes from the cause chain; the innermost cause that names one speaks for the whole chain. */
function collectCodes(error: unknown, depth: number): string[] {
  if (typeof error !== 'object' || error === null || depth > 5) return [];
  const inner = 'cause' in error ? collectCodes(error.cause, depth + 1) : [];
  if (inner.length > 0) return inner;
  if ('errors' in error && Array.isArray(error.errors) && error.errors.length > 0) {
    const perAddress = error.errors.map((e: unknown) => collectCodes(e, depth + 1));
    // One address with no code means we cannot say it never connected.
    if (perAddress.some((c) => c.length === 0)) return ['UNKNOWN'];
    return perAddress.flat();
  }
  if ('code' in error && typeof error.code === 'string') return [error.code];
  return [];
}
