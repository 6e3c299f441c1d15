// API-key authentication for the reference service: Bearer keys, stored as sha256 hashes,
// looked up by hash, confirmed in constant time, resolved to a tenant and a role. Readers may
// only read.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from 'retrysafe/http';
import type { ApiKeyRecord, ApiKeyRepository, Role } from './data/types.js';
import { asUnavailable } from './data/unavailable.js';

export const realm = 'retrysafe';

/** Work with nothing configured; the first real key (`retrysafe keys create`) removes them. */
export const demoKeys: ReadonlyArray<{ key: string; tenant: string; role: Role }> = [
  { key: 'demo-writer-a', tenant: 'a', role: 'writer' },
  { key: 'demo-writer-b', tenant: 'b', role: 'writer' },
  { key: 'demo-reader-a', tenant: 'a', role: 'reader' },
];

export interface Principal {
  tenant: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes anyone may call without a key (health, metrics, OpenAPI). */
    public?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** API keys are long random secrets, so a fast hash is enough: no salt or slow KDF is needed. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

const sha256HexPattern = /^[0-9a-f]{64}$/i;

/**
 * Whether `presented` is the key behind `storedHash`, compared in constant time. The lookup
 * already went by hash; this final check means a record found some other way (a
 * case-insensitive collation, a stale cache entry, a repository bug) never admits another key.
 */
export function apiKeyMatches(presented: string, storedHash: string): boolean {
  if (!sha256HexPattern.test(storedHash)) return false;
  const expected = Buffer.from(storedHash, 'hex');
  const actual = createHash('sha256').update(presented).digest();
  return timingSafeEqual(actual, expected);
}

export function generateApiKey(): string {
  return `rs_${randomBytes(24).toString('base64url')}`;
}

export function demoKeyRecords(): ApiKeyRecord[] {
  return demoKeys.map((k) => ({ keyHash: hashApiKey(k.key), tenant: k.tenant, role: k.role, label: 'demo' }));
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);
const cacheTtlMs = 5_000;

export function registerAuth(app: FastifyInstance, keys: ApiKeyRepository): void {
  // A short cache keeps a database round trip off every request; revocations apply within 5 s.
  const cache = new Map<string, { record: ApiKeyRecord | undefined; expiresAtMs: number }>();
  async function lookup(keyHash: string): Promise<ApiKeyRecord | undefined> {
    const cached = cache.get(keyHash);
    if (cached && cached.expiresAtMs > Date.now()) return cached.record;
    let record: ApiKeyRecord | undefined;
    try {
      record = await keys.find(keyHash);
    } catch (error) {
      // The database is down and the cached answer expired: 503 with Retry-After, not a 500.
      throw asUnavailable(error);
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(keyHash, { record, expiresAtMs: Date.now() + cacheTtlMs });
    return record;
  }

  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.routeOptions.config?.public) return;
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new UnauthorizedError('Send your API key as "Authorization: Bearer <key>".', realm);
    }
    const presented = match[1]!;
    const record = await lookup(hashApiKey(presented));
    if (!record || !apiKeyMatches(presented, record.keyHash)) {
      throw new UnauthorizedError('This API key is not known.', realm, 'invalid_token');
    }
    // Deny by default: only a writer writes, whatever else a role column might ever hold.
    if (record.role !== 'writer' && !safeMethods.has(request.method)) {
      throw new ForbiddenError('This API key may only read; use a read-write key to change data.');
    }
    request.principal = { tenant: record.tenant, role: record.role };
  });
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route reached without authentication');
  return request.principal;
}
