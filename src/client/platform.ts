// What the fetch underneath may do on its own. Node's fetch (undici) never repeats a POST; a
// browser re-sends a request by itself when a reused keep-alive connection is reset after the
// server read it, so there the client cannot promise that a POST without a key ran at most once.

/** True in browsers (every browser's user agent starts with `Mozilla/`; Node's says `Node.js/…` or is absent). */
export function fetchMayResendWrites(): boolean {
  const agent = (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent;
  return typeof agent === 'string' && agent.startsWith('Mozilla/');
}
