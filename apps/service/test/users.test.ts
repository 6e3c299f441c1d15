// End-to-end: /users over real HTTP — creation (JSON, form, 303), validation, uniqueness,
// full replacement under If-Match, create-by-PUT, deletion, and pagination.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

let service: StartedService;
let asA: ReturnType<typeof api>;
let asB: ReturnType<typeof api>;
let counter = 0;

function uniqueName(prefix = 'user'): string {
  counter++;
  return `${prefix}_${counter}_${randomUUID().slice(0, 6)}`;
}

async function createUser(extra: Record<string, unknown> = {}) {
  const username = uniqueName();
  const r = await asA('/users', {
    method: 'POST',
    body: { username, email: `${username}@example.com`, ...extra },
  });
  expect(r.status).toBe(201);
  return r;
}

beforeAll(async () => {
  service = await startService();
  asA = api(service.url, 'demo-writer-a');
  asB = api(service.url, 'demo-writer-b');
});
afterAll(() => service.stop());

describe('POST /users', () => {
  it('creates from JSON: 201, Location, strong ETag, and a body with the id', async () => {
    const r = await createUser({ age: 30, bio: 'hi', interests: ['chess'] });
    expect(r.headers.get('location')).toBe(`/users/${r.json.id}`);
    expect(r.headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(r.json).toMatchObject({ age: 30, bio: 'hi', interests: ['chess'], version: 1 });
    const read = await asA(r.headers.get('location')!);
    expect(read.status).toBe(200);
    expect(read.text).toBe(r.text);
    expect(read.headers.get('etag')).toBe(r.headers.get('etag'));
  });

  it('creates from an HTML form, coercing age and repeated interests', async () => {
    const username = uniqueName('form');
    const r = await asA('/users', {
      method: 'POST',
      body: `username=${username}&email=${username}%40example.com&age=41&interests=go&interests=tea`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ username, age: 41, interests: ['go', 'tea'] });
  });

  it('answers an HTML form post that accepts text/html with 303 See Other to the new user', async () => {
    const username = uniqueName('prg');
    const r = await asA('/users', {
      method: 'POST',
      body: `username=${username}&email=${username}%40example.com`,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'text/html,application/xhtml+xml',
      },
    });
    expect(r.status).toBe(303);
    const location = r.headers.get('location')!;
    expect(location).toMatch(/^\/users\/[0-9a-f-]{36}$/);
    const read = await asA(location);
    expect(read.json.username).toBe(username);
  });

  it('answers 400 for an unparseable body and 415 for other media types, creating nothing', async () => {
    const before = (await asA('/users?limit=100')).json.data.length;
    const broken = await asA('/users', { method: 'POST', body: '{"username": "x",' });
    expect(broken.status).toBe(400);
    expect(broken.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const xml = await asA('/users', {
      method: 'POST',
      body: '<user/>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(xml.status).toBe(415);
    expect(xml.json).toMatchObject({ status: 415, type: 'urn:retrysafe:problem:unsupported-media-type' });
    expect((await asA('/users?limit=100')).json.data.length).toBe(before);
  });

  it('answers 422 with a pointer per broken field (username, email, age, unknown field)', async () => {
    const r = await asA('/users', {
      method: 'POST',
      body: { username: 'No', email: 'not-an-email', age: 151, nickname: 'x' },
    });
    expect(r.status).toBe(422);
    expect(r.json.type).toBe('urn:retrysafe:problem:validation');
    const pointers = r.json.errors.map((e: { pointer: string }) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/username', '/email', '/age', '/nickname']));
    const fractional = await asA('/users', {
      method: 'POST',
      body: { username: uniqueName(), email: 'a@b.co', age: 1.5 },
    });
    expect(fractional.status).toBe(422);
    expect(fractional.json.errors[0].pointer).toBe('/age');
    const missing = await asA('/users', { method: 'POST', body: {} });
    expect(missing.json.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/email',
      '/username',
    ]);
  });

  it('answers 409 with the existing user’s URL when the username is taken in the tenant, but not across tenants', async () => {
    const first = await createUser();
    const username = first.json.username;
    const clash = await asA('/users', { method: 'POST', body: { username, email: 'other@example.com' } });
    expect(clash.status).toBe(409);
    expect(clash.json).toMatchObject({
      type: 'urn:retrysafe:problem:username-taken',
      existing: `/users/${first.json.id}`,
    });
    expect(clash.json.detail).toContain(username);
    const otherTenant = await asB('/users', { method: 'POST', body: { username, email: 'b@example.com' } });
    expect(otherTenant.status).toBe(201);
  });

  it('replays a keyed POST /users instead of answering 409 to its own retry', async () => {
    const username = uniqueName('keyed');
    const key = randomUUID();
    const body = { username, email: `${username}@example.com` };
    const first = await asA('/users', { method: 'POST', body, headers: { 'idempotency-key': key } });
    const retry = await asA('/users', { method: 'POST', body, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json.id).toBe(first.json.id);
  });
});

describe('GET /users', () => {
  it('answers 404 for a missing id and for another tenant’s user', async () => {
    const mine = await createUser();
    expect((await asA(`/users/${randomUUID()}`)).status).toBe(404);
    const foreign = await asB(`/users/${mine.json.id}`);
    expect(foreign.status).toBe(404);
    expect(foreign.json.type).toBe('urn:retrysafe:problem:not-found');
  });

  it('answers 304 to If-None-Match with the current ETag', async () => {
    const r = await createUser();
    const again = await asA(`/users/${r.json.id}`, { headers: { 'if-none-match': r.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it('lists the tenant’s users page by page with a cursor', async () => {
    const fresh = await startService();
    try {
      const client = api(fresh.url);
      const names: string[] = [];
      for (let i = 0; i < 3; i++) {
        const username = `pager_${i}`;
        names.push(username);
        await client('/users', { method: 'POST', body: { username, email: `${username}@example.com` } });
      }
      const first = await client('/users?limit=2');
      expect(first.json.data.map((u: { username: string }) => u.username)).toEqual(names.slice(0, 2));
      expect(first.headers.get('link')).toContain('rel="next"');
      const second = await client(`/users?limit=2&cursor=${first.json.nextCursor}`);
      expect(second.json.data.map((u: { username: string }) => u.username)).toEqual(names.slice(2));
      expect(second.json.nextCursor).toBeNull();
      expect((await client('/users?limit=0')).status).toBe(400);
    } finally {
      await fresh.stop();
    }
  });
});

describe('PUT /users/{id}', () => {
  it('replaces the whole user under If-Match: omitted optional fields are cleared, new ETag', async () => {
    const created = await createUser({ age: 20, bio: 'old', interests: ['a'] });
    const { id, username, email } = created.json;
    const r = await asA(`/users/${id}`, {
      method: 'PUT',
      body: { username, email },
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id, username, email, interests: [], version: 2 });
    expect(r.json).not.toHaveProperty('age');
    expect(r.json).not.toHaveProperty('bio');
    expect(r.headers.get('etag')).not.toBe(created.headers.get('etag'));
    const read = await asA(`/users/${id}`);
    expect(read.text).toBe(r.text);
  });

  it('accepts the read-only fields of a GET representation echoed back', async () => {
    const created = await createUser();
    const r = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body: { ...created.json, bio: 'edited' },
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(r.status).toBe(200);
    expect(r.json.bio).toBe('edited');
  });

  it('answers 204 with the new ETag for Prefer: return=minimal', async () => {
    const created = await createUser();
    const r = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body: { username: created.json.username, email: 'new@example.com' },
      headers: { 'if-match': created.headers.get('etag')!, prefer: 'return=minimal' },
    });
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    const read = await asA(`/users/${created.json.id}`);
    expect(read.headers.get('etag')).toBe(r.headers.get('etag'));
    expect(read.json.email).toBe('new@example.com');
  });

  it('answers 428 without If-Match, 412 with a stale or weak one, and changes nothing', async () => {
    const created = await createUser();
    const { id, username } = created.json;
    const etag = created.headers.get('etag')!;
    const body = { username, email: 'changed@example.com' };
    const none = await asA(`/users/${id}`, { method: 'PUT', body });
    expect(none.status).toBe(428);
    expect(none.json.type).toBe('urn:retrysafe:problem:precondition-required');
    const stale = await asA(`/users/${id}`, { method: 'PUT', body, headers: { 'if-match': '"stale"' } });
    expect(stale.status).toBe(412);
    expect(stale.json.type).toBe('urn:retrysafe:problem:precondition-failed');
    const weak = await asA(`/users/${id}`, { method: 'PUT', body, headers: { 'if-match': `W/${etag}` } });
    expect(weak.status).toBe(412);
    const read = await asA(`/users/${id}`);
    expect(read.text).toBe(created.text);
  });

  it('decides preconditions before validating the body: a stale If-Match with a broken body is 412', async () => {
    const created = await createUser();
    const r = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body: { username: 'X' },
      headers: { 'if-match': '"stale"' },
    });
    expect(r.status).toBe(412);
  });

  it('answers 422 when a required field is missing, and changes nothing', async () => {
    const created = await createUser();
    const r = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body: { username: created.json.username },
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(r.status).toBe(422);
    expect(r.json.errors).toEqual([expect.objectContaining({ pointer: '/email' })]);
    expect((await asA(`/users/${created.json.id}`)).text).toBe(created.text);
  });

  it('answers 409 stale-version when the body carries an old version', async () => {
    const created = await createUser();
    const etag = created.headers.get('etag')!;
    const r = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body: { username: created.json.username, email: created.json.email, version: 7 },
      headers: { 'if-match': etag },
    });
    expect(r.status).toBe(409);
    expect(r.json.type).toBe('urn:retrysafe:problem:stale-version');
  });

  it('answers 409 when the replacement takes another user’s username', async () => {
    const one = await createUser();
    const two = await createUser();
    const r = await asA(`/users/${two.json.id}`, {
      method: 'PUT',
      body: { username: one.json.username, email: two.json.email },
      headers: { 'if-match': two.headers.get('etag')! },
    });
    expect(r.status).toBe(409);
    expect(r.json.existing).toBe(`/users/${one.json.id}`);
  });

  it('is idempotent: the same replacement twice leaves the same state', async () => {
    const created = await createUser();
    const body = { username: created.json.username, email: 'same@example.com', bio: 'same' };
    const first = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body,
      headers: { 'if-match': created.headers.get('etag')! },
    });
    const second = await asA(`/users/${created.json.id}`, {
      method: 'PUT',
      body,
      headers: { 'if-match': first.headers.get('etag')! },
    });
    expect(second.status).toBe(200);
    const { updatedAt: _a, version: _v1, ...firstState } = first.json;
    const { updatedAt: _b, version: _v2, ...secondState } = second.json;
    expect(secondState).toEqual(firstState);
  });

  it('creates at an unused client-chosen UUID with If-None-Match: * (201), and the same again is 412', async () => {
    const id = randomUUID();
    const username = uniqueName('put');
    const body = { username, email: `${username}@example.com` };
    const r = await asA(`/users/${id}`, { method: 'PUT', body, headers: { 'if-none-match': '*' } });
    expect(r.status).toBe(201);
    expect(r.headers.get('location')).toBe(`/users/${id}`);
    expect(r.json.id).toBe(id);
    const again = await asA(`/users/${id}`, { method: 'PUT', body, headers: { 'if-none-match': '*' } });
    expect(again.status).toBe(412);
    expect((await asA(`/users/${id}`)).text).toBe(r.text);
  });

  it('refuses create-by-PUT at an id that is not a UUID, and PUT on a missing id without preconditions', async () => {
    const username = uniqueName('bad');
    const body = { username, email: `${username}@example.com` };
    const notUuid = await asA('/users/not-a-uuid', {
      method: 'PUT',
      body,
      headers: { 'if-none-match': '*' },
    });
    expect(notUuid.status).toBe(400);
    const bare = await asA(`/users/${randomUUID()}`, { method: 'PUT', body });
    expect(bare.status).toBe(428);
    const ifMatchMissing = await asA(`/users/${randomUUID()}`, {
      method: 'PUT',
      body,
      headers: { 'if-match': '"x"' },
    });
    expect(ifMatchMissing.status).toBe(412);
  });
});

describe('DELETE /users/{id}', () => {
  it('deletes with If-Match (204), then answers 404; without If-Match 428; stale 412', async () => {
    const created = await createUser();
    const path = `/users/${created.json.id}`;
    expect((await asA(path, { method: 'DELETE' })).status).toBe(428);
    expect((await asA(path, { method: 'DELETE', headers: { 'if-match': '"stale"' } })).status).toBe(412);
    const deleted = await asA(path, {
      method: 'DELETE',
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(deleted.status).toBe(204);
    expect((await asA(path)).status).toBe(404);
    expect(
      (await asA(path, { method: 'DELETE', headers: { 'if-match': created.headers.get('etag')! } })).status,
    ).toBe(404);
  });
});
