// Unit: API-key checks — the constant-time final comparison, and that authentication trusts
// only a record whose hash is the presented key's, whatever the repository hands back.
import Fastify from 'fastify';
import { problemErrorHandler } from 'retrysafe/fastify';
import { describe, expect, it } from 'vitest';
import { apiKeyMatches, generateApiKey, hashApiKey, principalOf, registerAuth } from './auth.js';
import type { ApiKeyRecord, ApiKeyRepository } from './data/types.js';

describe('apiKeyMatches', () => {
  it('accepts the key whose sha256 hex is stored, in either hex case', () => {
    const key = generateApiKey();
    expect(apiKeyMatches(key, hashApiKey(key))).toBe(true);
    expect(apiKeyMatches(key, hashApiKey(key).toUpperCase())).toBe(true);
  });

  it('refuses any other key, including one differing only in letter case or by a character', () => {
    const key = generateApiKey();
    const stored = hashApiKey(key);
    expect(apiKeyMatches(key.toUpperCase(), stored)).toBe(false);
    expect(apiKeyMatches(`${key} `, stored)).toBe(false);
    expect(apiKeyMatches(key.slice(0, -1), stored)).toBe(false);
    expect(apiKeyMatches('demo-writer-a', hashApiKey('demo-writer-b'))).toBe(false);
  });

  it('refuses a stored value that is not a sha256 hex digest instead of throwing', () => {
    const key = generateApiKey();
    const stored = hashApiKey(key);
    // Wrong lengths would make timingSafeEqual throw; non-hex would decode to fewer bytes.
    for (const bad of ['', stored.slice(0, 62), `${stored}00`, `${stored.slice(0, 63)}g`, key]) {
      expect(apiKeyMatches(key, bad), bad).toBe(false);
    }
  });
});

/** A repository that returns `record` for any hash: a collation or cache that matches too much. */
function sloppyRepository(record: ApiKeyRecord): ApiKeyRepository {
  return {
    find: async () => record,
    add: async () => {},
    seedDemoKeys: async () => false,
  };
}

async function appWith(keys: ApiKeyRepository) {
  const app = Fastify();
  app.setErrorHandler(problemErrorHandler);
  registerAuth(app, keys);
  app.get('/whoami', async (request) => principalOf(request));
  app.post('/things', async () => ({ ok: true }));
  await app.ready();
  return app;
}

describe('registerAuth', () => {
  it('admits a key only when the found record hashes to it, whatever the repository returned', async () => {
    const realKey = generateApiKey();
    const record: ApiKeyRecord = { keyHash: hashApiKey(realKey), tenant: 't', role: 'writer', label: 'x' };
    const app = await appWith(sloppyRepository(record));
    const real = await app.inject({ url: '/whoami', headers: { authorization: `Bearer ${realKey}` } });
    expect(real.statusCode).toBe(200);
    expect(real.json()).toEqual({ tenant: 't', role: 'writer' });
    for (const other of [generateApiKey(), realKey.toUpperCase(), 'demo-writer-a']) {
      const refused = await app.inject({ url: '/whoami', headers: { authorization: `Bearer ${other}` } });
      expect(refused.statusCode, other).toBe(401);
      expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
    }
    await app.close();
  });

  it('lets only a writer write: a reader, or a role it does not know, gets 403', async () => {
    for (const role of ['reader', 'admin']) {
      const key = generateApiKey();
      const record = { keyHash: hashApiKey(key), tenant: 't', role, label: 'x' } as ApiKeyRecord;
      const app = await appWith(sloppyRepository(record));
      const headers = { authorization: `Bearer ${key}` };
      expect((await app.inject({ url: '/whoami', headers })).statusCode).toBe(200);
      const write = await app.inject({ method: 'POST', url: '/things', headers, payload: {} });
      expect(write.statusCode, role).toBe(403);
      expect(write.headers['content-type']).toMatch(/^application\/problem\+json/);
      await app.close();
    }
  });
});
