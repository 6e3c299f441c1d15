// What the fetch underneath may do on its own. Node's fetch (undici) never repeats a POST; a
// browser re-sends a request by itself when a reused keep-alive connection is reset after the
// server read it, so there the client cannot promise that a POST without a key ran at most once.

/** True outside Node (browsers, and runtimes that may share their behaviour). */
export function fetchMayResendWrites(): boolean {
  const runtime = globalThis as { process?: { versions?: { node?: unknown } } };
  return typeof runtime.process?.versions?.node !== 'string';
}
