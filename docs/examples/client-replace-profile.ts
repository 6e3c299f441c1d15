// README example: replace a profile without losing a colleague's edit. update() reads the profile,
// applies your change to a copy and PUTs it with If-Match; if someone saved in between (412), it
// reads again and re-applies your change to their version. Run: main('http://127.0.0.1:3000').
import { createClient } from 'retrysafe/client';

interface Profile {
  id: string;
  username: string;
  email: string;
  bio?: string;
  interests: string[];
}

export async function main(baseUrl: string, log: (line: string) => void = console.log) {
  const me = createClient({ baseUrl, token: 'demo-writer-a' });
  const colleague = createClient({ baseUrl, token: 'demo-writer-a' });

  const created = await me.post<Profile>('/users', { username: 'grace', email: 'grace@example.com' });
  if (!created.ok) throw new Error(created.error.message);
  const path = created.location ?? `/users/${created.data.id}`;

  let tries = 0;
  const saved = await me.update<Profile>(path, async (profile) => {
    tries += 1;
    if (tries === 1) {
      // Meanwhile a colleague adds an interest and saves first: our PUT will meet a 412.
      await colleague.update<Profile>(path, (p) => ({ ...p, interests: [...p.interests, 'compilers'] }));
    }
    // Change only what we mean to change, on whatever version we are given.
    profile.bio = 'Wrote the first compiler';
    return profile;
  });

  if (!saved.ok) {
    log(`Not saved: ${saved.error.message}`);
    return { saved, tries };
  }
  log(`Saved after ${tries} tries: bio "${saved.data.bio}", interests ${saved.data.interests.join(', ')}`);
  return { saved, tries };
}
