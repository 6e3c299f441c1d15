// README example: create a user with the client, checking the input first and showing the
// server's own words when the username is taken. Run: main('http://127.0.0.1:3000').
import { createClient } from 'retrysafe/client';
import { z } from 'zod';

const newUser = z.object({
  username: z.string().regex(/^[a-z0-9_]{3,32}$/, 'use 3–32 lowercase letters, digits or _'),
  email: z.email(),
  interests: z.array(z.string()).default([]),
});

interface User {
  id: string;
  username: string;
}

export async function main(baseUrl: string, log: (line: string) => void = console.log) {
  const client = createClient({ baseUrl, token: 'demo-writer-a' });

  // Invalid input never leaves the machine: the schema answers, with a pointer per field.
  const typo = await client.post(
    '/users',
    { username: 'Ada!', email: 'ada-at-example' },
    { schema: newUser },
  );
  if (!typo.ok) log(`Not sent: ${typo.error.fieldErrors?.map((e) => `${e.pointer} ${e.detail}`).join(', ')}`);

  const created = await client.post<User>(
    '/users',
    { username: 'ada', email: 'ada@example.com' },
    { schema: newUser },
  );
  if (created.ok) log(`Created ${created.data.username} at ${created.location}`);
  else log(`Could not create ada: ${created.error.message}`);

  // The same username again: a typed conflict, never a throw and never a second user.
  const again = await client.post<User>(
    '/users',
    { username: 'ada', email: 'ada2@example.com' },
    { schema: newUser },
  );
  if (!again.ok && again.error.kind === 'conflict') log(`Could not create ada again: ${again.error.message}`);

  return { typo, created, again };
}
