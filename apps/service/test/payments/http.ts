// Plain fetch for the payments tests: what the simulator answers, byte for byte, with no client
// logic between (the client has its own tests).

/** Parsed JSON of a test response: tests index into it freely and assert on what they read. */
// biome-ignore lint/suspicious/noExplicitAny: test-only convenience; every value read is asserted on.
type Json = any;

export interface SimResponse {
  status: number;
  headers: Headers;
  text: string;
  json: Json;
}

export async function send(
  baseUrl: string,
  path: string,
  init: { method?: string; body?: unknown; key?: string; headers?: Record<string, string> } = {},
): Promise<SimResponse> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key !== undefined) headers['idempotency-key'] = init.key;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(new URL(path, baseUrl), {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body: body ?? null,
  });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  const json = type.includes('json') && text !== '' ? (JSON.parse(text) as Json) : undefined;
  return { status: response.status, headers: response.headers, text, json };
}

/** An RFC 9457 problem with `status` equal to the HTTP status (PROTOCOL rule 19). */
export function isProblem(response: SimResponse, status: number): boolean {
  return (
    response.status === status &&
    (response.headers.get('content-type') ?? '').startsWith('application/problem+json') &&
    response.json?.status === status &&
    typeof response.json?.type === 'string' &&
    typeof response.json?.detail === 'string'
  );
}
