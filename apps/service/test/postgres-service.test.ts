// End-to-end: the reference service on PostgreSQL (DATABASE_URL=postgres://…) keeps the same
// HTTP behaviour as on SQLite — its own code paths (ON CONFLICT, savepoints, bigint cursors).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { api, type StartedService, startService } from './helpers/service.js';

let db: TestDatabase;
let service: StartedService;
let asA: ReturnType<typeof api>;

beforeAll(async () => {
  db = await createTestDatabase('retrysafe_service');
  service = await startService({ databaseUrl: db.url });
  asA = api(service.url);
});
afterAll(async () => {
  await service?.stop();
  await db?.drop();
});

describe('reference service on PostgreSQL', () => {
  it('creates, replays and refuses reuse of an order key, keeping one row', async () => {
    const key = randomUUID();
    const body = { items: [{ sku: 'pg', quantity: 2, unitPriceCents: 300 }], currency: 'EUR', note: 'n' };
    const first = await asA('/orders', { method: 'POST', body, headers: { 'idempotency-key': key } });
    const again = await asA('/orders', { method: 'POST', body, headers: { 'idempotency-key': key } });
    const other = await asA('/orders', {
      method: 'POST',
      body: { ...body, note: 'x' },
      headers: { 'idempotency-key': key },
    });
    expect(first.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.text).toBe(first.text);
    expect(other.status).toBe(422);
    const read = await asA(first.headers.get('location')!);
    expect(read.text).toBe(first.text);
    expect(read.headers.get('etag')).toBe(first.headers.get('etag'));
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM orders WHERE id = $1', [
      first.json.id,
    ]);
    expect(rows[0].n).toBe(1);
  });

  it('answers 409 username-taken on create and on replace, and the transaction stays usable', async () => {
    const one = await asA('/users', {
      method: 'POST',
      body: { username: 'pg_one', email: 'one@example.com' },
    });
    const two = await asA('/users', {
      method: 'POST',
      body: { username: 'pg_two', email: 'two@example.com' },
    });
    const clash = await asA('/users', {
      method: 'POST',
      body: { username: 'pg_one', email: 'x@example.com' },
    });
    expect(clash.status).toBe(409);
    expect(clash.json.existing).toBe(`/users/${one.json.id}`);
    const rename = await asA(`/users/${two.json.id}`, {
      method: 'PUT',
      body: { username: 'pg_one', email: 'two@example.com' },
      headers: { 'if-match': two.headers.get('etag')! },
    });
    expect(rename.status).toBe(409);
    expect(rename.json.existing).toBe(`/users/${one.json.id}`);
    const unchanged = await asA(`/users/${two.json.id}`);
    expect(unchanged.text).toBe(two.text);
  });

  it('replaces under If-Match, refuses stale writes, creates by PUT once, deletes', async () => {
    const created = await asA('/users', {
      method: 'POST',
      body: { username: 'pg_put', email: 'p@example.com', age: 5 },
    });
    const replaced = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body: { username: 'pg_put', email: 'p@example.com' },
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json).not.toHaveProperty('age');
    const stale = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body: { username: 'pg_put', email: 'p@example.com' },
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(stale.status).toBe(412);
    const id = randomUUID();
    const put = (username: string) =>
      asA(`/users/${id}`, {
        method: 'PUT',
        body: { username, email: 'c@example.com' },
        headers: { 'if-none-match': '*' },
      });
    expect((await put('pg_created')).status).toBe(201);
    expect((await put('pg_created_again')).status).toBe(412);
    const deleted = await asA(`/users/${created.json.id}`, {
      method: 'DELETE',
      headers: { 'if-match': replaced.headers.get('etag')! },
    });
    expect(deleted.status).toBe(204);
    expect((await asA(`/users/${created.json.id}`)).status).toBe(404);
  });

  it('pages through users with cursors', async () => {
    const seen: string[] = [];
    let path: string | null = '/users?limit=1';
    while (path) {
      const page = await asA(path);
      seen.push(...page.json.data.map((u: { username: string }) => u.username));
      path = page.json.nextCursor ? `/users?limit=1&cursor=${page.json.nextCursor}` : null;
    }
    expect(seen).toEqual(['pg_one', 'pg_two', 'pg_created']);
  });
});
