// Docs that run: every README code block marked with an example file must equal that file,
// and each example is executed here, so the README cannot drift from the code.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildPaymentsApp } from '../docs/examples/fastify-protect-route.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('shows each marked example exactly as the file that the tests run', () => {
    const marked = [...readme.matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)];
    expect(marked.length).toBeGreaterThan(0);
    for (const [, path, code] of marked) {
      expect(code, path).toBe(readFileSync(new URL(`../${path}`, import.meta.url), 'utf8'));
    }
  });

  it('keeps both quick-start commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});

describe('docs/examples/fastify-protect-route.ts', () => {
  it('charges once for two requests with the same key, and replays the first answer', async () => {
    const { app, store } = await buildPaymentsApp();
    const request = {
      method: 'POST' as const,
      url: '/payments',
      headers: { 'idempotency-key': 'pay-1', 'x-account-id': 'acct-1' },
      payload: { cents: 500 },
    };
    const first = await app.inject(request);
    const retry = await app.inject(request);
    expect(first.statusCode).toBe(201);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toBe(first.body);
    expect(retry.headers.location).toBe(first.headers.location);
    expect(store.db.prepare('SELECT count(*) AS n FROM payments').get()).toEqual({ n: 1 });

    const missingKey = await app.inject({ ...request, headers: { 'x-account-id': 'acct-1' } });
    expect(missingKey.statusCode).toBe(400);
    expect(missingKey.headers['content-type']).toMatch(/^application\/problem\+json/);
    await app.close();
  });
});
