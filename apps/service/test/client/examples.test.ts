// Docs that run: each client example in docs/examples runs against the real reference service,
// and what it printed and returned is checked. Needs `npm run build` (the examples import the package).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main as createUser } from '../../../../docs/examples/client-create-user.js';
import { main as listAndCache } from '../../../../docs/examples/client-list-and-cache.js';
import { main as orderOverFlakyNetwork } from '../../../../docs/examples/client-order-flaky-network.js';
import { main as replaceProfile } from '../../../../docs/examples/client-replace-profile.js';
import { api, type StartedService, startService } from '../helpers/service.js';

let service: StartedService;
beforeAll(async () => {
  service = await startService();
});
afterAll(async () => {
  await service?.stop();
});

it('client-create-user: rejects a typo locally, creates ada once, reports the taken username', async () => {
  const lines: string[] = [];
  const { typo, created, again } = await createUser(service.url, (line) => lines.push(line));
  expect(!typo.ok && typo.error).toMatchObject({ kind: 'invalid_input', attempts: 0 });
  expect(created.ok && created.status).toBe(201);
  expect(!again.ok && again.error.kind).toBe('conflict');
  expect(lines).toEqual([
    expect.stringMatching(/^Not sent: \/username .+, \/email .+/),
    expect.stringMatching(/^Created ada at \/users\/[0-9a-f-]{36}$/),
    "Could not create ada again: Username 'ada' is already taken.",
  ]);
  const users = await api(service.url)('/users?limit=100');
  expect(users.json.data.filter((u: { username: string }) => u.username === 'ada')).toHaveLength(1);
});

it('client-replace-profile: keeps the colleague’s interest and adds the bio', async () => {
  const lines: string[] = [];
  const { saved, tries } = await replaceProfile(service.url, (line) => lines.push(line));
  expect(tries).toBe(2);
  expect(saved.ok && saved.data).toMatchObject({ bio: 'Wrote the first compiler', interests: ['compilers'] });
  expect(lines).toEqual(['Saved after 2 tries: bio "Wrote the first compiler", interests compilers']);
});

it('client-order-flaky-network: the lost answer is replayed and exactly one order exists', async () => {
  const lines: string[] = [];
  const { placed, ordersWithNote } = await orderOverFlakyNetwork(service.url, (line) => lines.push(line));
  expect(placed.ok && placed).toMatchObject({ status: 201, replayed: true, attempts: 2 });
  expect(ordersWithNote).toBe(1);
  expect(lines).toEqual([
    'Attempt 1 failed (network, sent: maybe); retrying',
    expect.stringMatching(/^Order [0-9a-f-]{36} placed after 2 attempts \(replayed: true\)$/),
    'Orders with this note on the server: 1',
  ]);
});

it('client-list-and-cache: reads every user page by page, and a re-read is a 304 from the cache', async () => {
  const lines: string[] = [];
  const { seen, pageCount, fresh, again, attempts } = await listAndCache(service.url, (line) =>
    lines.push(line),
  );
  const all = await api(service.url)('/users?limit=100');
  expect(seen).toBe(all.json.data.length);
  expect(pageCount).toBe(Math.ceil(seen / 2));
  expect(fresh).toMatchObject({ ok: true, status: 200, notModified: false });
  expect(again).toMatchObject({ ok: true, status: 304, notModified: true });
  expect(again.ok && fresh.ok && again.data).toEqual(fresh.ok && fresh.data);
  expect(attempts.every((a) => a.endsWith('#1'))).toBe(true);
  expect(lines).toEqual([
    `Read ${seen} users in ${pageCount} pages`,
    expect.stringMatching(/^Re-read \w+: HTTP 304, not modified: true$/),
  ]);
});
