// End-to-end: API keys — 401 with WWW-Authenticate, 403 for readers that write, tenant
// isolation, and real keys from `retrysafe keys create` (stored hashed, demo keys retired).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

const run = promisify(execFile);
const bin = new URL('../bin/retrysafe.js', import.meta.url).pathname;
const order = { items: [{ sku: 'k', quantity: 1, unitPriceCents: 1 }], currency: 'EUR' };

let service: StartedService;
beforeAll(async () => {
  service = await startService();
});
afterAll(() => service.stop());

describe('authentication', () => {
  it('answers 401 problem+json with WWW-Authenticate when the key is missing or unknown', async () => {
    const missing = await fetch(`${service.url}/users`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer realm="retrysafe"$/);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const unknown = await api(service.url, 'not-a-key')('/users');
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(unknown.json).toMatchObject({ status: 401, type: 'urn:retrysafe:problem:unauthorized' });
  });

  it('lets a reader read but answers 403 when it writes, before anything else is checked', async () => {
    const reader = api(service.url, 'demo-reader-a');
    expect((await reader('/users')).status).toBe(200);
    const write = await reader('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': 'r1' },
    });
    expect(write.status).toBe(403);
    expect(write.json.type).toBe('urn:retrysafe:problem:forbidden');
    const noKey = await reader('/orders', { method: 'POST', body: order });
    expect(noKey.status).toBe(403);
  });

  it('does not record a request refused by auth: the key still executes later', async () => {
    const reader = api(service.url, 'demo-reader-a');
    const writer = api(service.url, 'demo-writer-a');
    await reader('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': 'auth-first' } });
    const real = await writer('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': 'auth-first' },
    });
    expect(real.status).toBe(201);
    expect(real.headers.get('idempotent-replayed')).toBeNull();
  });
});

describe('retrysafe keys create', () => {
  it('issues a key that works, stores only its hash, and retires the demo keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retrysafe-keys-'));
    const dbPath = join(dir, 'keys.db');
    try {
      const first = await startService({ dbPath });
      await first.stop();
      const { stdout } = await run(process.execPath, [
        bin,
        'keys',
        'create',
        '--tenant',
        'acme',
        '--role',
        'writer',
        '--db',
        dbPath,
      ]);
      const key = stdout.split('\n')[0]!;
      expect(key).toMatch(/^rs_[A-Za-z0-9_-]{32}$/);
      expect(readFileSync(dbPath).includes(key)).toBe(false);

      const second = await startService({ dbPath });
      try {
        const created = await api(second.url, key)('/users', {
          method: 'POST',
          body: { username: 'acme_admin', email: 'admin@acme.test' },
        });
        expect(created.status).toBe(201);
        expect((await api(second.url, 'demo-writer-a')('/users')).status).toBe(401);
        expect(second.logs.join('\n')).not.toContain('Demo API keys');
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
