// Pagination over Link rel="next" with real loopback HTTP: every page in order, the first
// failure ends it, the page cap holds, and a next link to another origin is not followed.
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, nextLink } from '../../src/client/index.js';
import { problem, sendJson, startFaultServer, type TestServer } from './servers.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: Parameters<typeof startFaultServer>[0]): Promise<TestServer> {
  const server = await startFaultServer(handler);
  servers.push(server);
  return server;
}

/** Pages of two numbers each, `pages` pages long, linked by `?page=N`. */
function pagedList(
  pages: number,
  linkFor: (page: number) => string = (p) => `</numbers?page=${p}>; rel="next"`,
) {
  return serve((req, res) => {
    const page = Number(new URL(req.path, 'http://x').searchParams.get('page') ?? '1');
    const headers: Record<string, string> = page < pages ? { link: linkFor(page + 1) } : {};
    sendJson(res, 200, [page * 2 - 1, page * 2], headers);
  });
}

async function collect<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterator) out.push(item);
  return out;
}

describe('pages()', () => {
  it('yields every page in order until there is no next link', async () => {
    const server = await pagedList(3);
    const pages = await collect(
      createClient({ baseUrl: server.url }).pages<number[]>('/numbers', { query: { size: 2 } }),
    );
    expect(pages.map((p) => p.ok && p.data)).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(server.requests.map((r) => r.path)).toEqual([
      '/numbers?size=2',
      '/numbers?page=2',
      '/numbers?page=3',
    ]);
  });

  it('stops at maxPages', async () => {
    const server = await pagedList(1000);
    const pages = await collect(createClient({ baseUrl: server.url }).pages('/numbers', { maxPages: 4 }));
    expect(pages).toHaveLength(4);
    expect(server.requests).toHaveLength(4);
  });

  it('yields the first failure and ends there', async () => {
    const server = await serve((req, res) => {
      if (req.path.includes('page=2')) sendJson(res, 500, problem(500, 'internal', 'boom'));
      else sendJson(res, 200, [1], { link: '</numbers?page=2>; rel="next"' });
    });
    const pages = await collect(createClient({ baseUrl: server.url }).pages('/numbers'));
    expect(pages.map((p) => p.ok || p.error.kind)).toEqual([true, 'server']);
  });

  it('does not follow a next link to another origin', async () => {
    const other = await serve((_req, res) => sendJson(res, 200, []));
    const server = await pagedList(3, () => `<${other.url}/numbers?page=2>; rel="next"`);
    const pages = await collect(createClient({ baseUrl: server.url, token: 't' }).pages('/numbers'));
    expect(other.requests).toHaveLength(0);
    expect(pages.map((p) => p.ok || p.error.kind)).toEqual([true, 'bad_response']);
    expect(!pages[1]?.ok && pages[1]?.error.message).toMatch(/another origin/);
  });
});

describe('nextLink', () => {
  it('reads rel="next" among several links and relation types', () => {
    expect(nextLink('</a?page=1>; rel="prev", </a?page=3>; rel="next last"')).toBe('/a?page=3');
    expect(nextLink('<https://x.test/p2>; title="two"; rel=next')).toBe('https://x.test/p2');
    expect(nextLink('</a>; rel="prev"')).toBeUndefined();
    expect(nextLink(null)).toBeUndefined();
  });
});
