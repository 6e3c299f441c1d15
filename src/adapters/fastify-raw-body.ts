// The raw bytes of a request body, which the lifecycle fingerprints. Fastify keeps only the
// parsed body, so the JSON parser is replaced by one that reads the bytes, remembers them and
// then parses them exactly as Fastify's own parser does (prototype-poisoning checks included).
import type { FastifyInstance, FastifyRequest } from 'fastify';

const rawBodies = new WeakMap<FastifyRequest, Uint8Array>();
const encoder = new TextEncoder();
const empty = new Uint8Array(0);

export function rememberRawBody(request: FastifyRequest, body: Uint8Array): void {
  rawBodies.set(request, body);
}

/** Installs the JSON parser that remembers bytes; once per server. */
export function keepRawJsonBodies(fastify: FastifyInstance): void {
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    rawBodies.set(request, body as Buffer);
    parseJson(request, (body as Buffer).toString('utf8'), done);
  });
}

/**
 * The bytes as received, when a parser remembered them; otherwise the parsed body written
 * back (bytes and strings as they are, anything else as JSON), which fingerprints the same.
 */
export function rawBodyOf(request: FastifyRequest): Uint8Array {
  const raw = rawBodies.get(request);
  if (raw !== undefined) return raw;
  const body = request.body;
  if (body === undefined || body === null) return empty;
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return encoder.encode(body);
  return encoder.encode(JSON.stringify(body));
}
