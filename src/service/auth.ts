// API-key authentication for the reference service: Bearer keys, stored as sha256 hashes,
// resolved to a tenant and a role. Readers may only read.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../http/problem.js';
import type { ApiKeyRecord, ApiKeyRepository, Role } from './data/types.js';

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
  const cache = new Map<string, { principal: Principal | undefined; expiresAtMs: number }>();
  async function lookup(keyHash: string): Promise<Principal | undefined> {
    const cached = cache.get(keyHash);
    if (cached && cached.expiresAtMs > Date.now()) return cached.principal;
    const found = await keys.find(keyHash);
    const principal = found && { tenant: found.tenant, role: found.role };
    if (cache.size > 10_000) cache.clear();
    cache.set(keyHash, { principal, expiresAtMs: Date.now() + cacheTtlMs });
    return principal;
  }

  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.routeOptions.config?.public) return;
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new UnauthorizedError('Send your API key as "Authorization: Bearer <key>".', realm);
    }
    const principal = await lookup(hashApiKey(match[1]!));
    if (!principal) throw new UnauthorizedError('This API key is not known.', realm, 'invalid_token');
    if (principal.role === 'reader' && !safeMethods.has(request.method)) {
      throw new ForbiddenError('This API key may only read; use a read-write key to change data.');
    }
    request.principal = principal;
  });
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route reached without authentication');
  return request.principal;
}
