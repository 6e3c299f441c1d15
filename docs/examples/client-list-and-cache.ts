// README example: read a list page by page, re-read a user cheaply, and see every attempt. pages()
// follows `Link: rel="next"`; etagCache sends If-None-Match and a 304 returns the remembered user;
// a beforeRequest hook logs each attempt with its number. Run: main('http://127.0.0.1:3000').
import { createClient } from 'retrysafe/client';

interface User {
  id: string;
  username: string;
  email: string;
}

export async function main(baseUrl: string, log: (line: string) => void = console.log) {
  const attempts: string[] = [];
  const client = createClient({
    baseUrl,
    token: 'demo-writer-a',
    etagCache: true,
    hooks: {
      beforeRequest: [
        ({ method, url, attempt }) => void attempts.push(`${method} ${new URL(url).pathname} #${attempt}`),
      ],
    },
  });

  for (const name of ['lin', 'mo', 'noor']) {
    const made = await client.post<User>('/users', {
      username: `list_${name}`,
      email: `${name}@example.com`,
    });
    if (!made.ok) throw new Error(made.error.message);
  }

  // Two users per page; each page is its own call with its own retries and deadline.
  let seen = 0;
  let pageCount = 0;
  for await (const page of client.pages<{ data: User[] }>('/users', { query: { limit: 2 } })) {
    if (!page.ok) {
      log(`Stopped: ${page.error.message}`);
      break;
    }
    pageCount += 1;
    seen += page.data.data.length;
  }
  log(`Read ${seen} users in ${pageCount} pages`);

  const first = await client.get<{ data: User[] }>('/users', { query: { limit: 1 } });
  const listed = first.ok ? first.data.data[0] : undefined;
  if (listed === undefined) throw new Error('no user to re-read');
  const fresh = await client.get<User>(`/users/${listed.id}`);
  const again = await client.get<User>(`/users/${listed.id}`, { timeoutMs: 2_000 });
  if (fresh.ok && again.ok) {
    log(`Re-read ${again.data.username}: HTTP ${again.status}, not modified: ${again.notModified}`);
  }
  return { seen, pageCount, fresh, again, attempts };
}
