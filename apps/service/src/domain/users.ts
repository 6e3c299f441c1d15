// The user profile: its stored shape, its one public representation, and the ETag of that
// representation. Framework-free, shared by every persistence backend.
import { strongEtag } from 'retrysafe/http';

export interface UserInput {
  username: string;
  email: string;
  age?: number;
  bio?: string;
  interests?: string[];
}

export interface User {
  id: string;
  username: string;
  email: string;
  age: number | null;
  bio: string | null;
  interests: string[];
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface StoredUser extends User {
  tenant: string;
  etag: string;
}

/** The public representation; omitted optional fields stay omitted. */
export function userRepresentation(user: User): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    ...(user.age === null ? {} : { age: user.age }),
    ...(user.bio === null ? {} : { bio: user.bio }),
    interests: user.interests,
    version: user.version,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
  };
}

/** The exact bytes every GET, POST and PUT answer with (and that the ETag is computed over). */
export function serializeUser(user: User): string {
  return JSON.stringify(userRepresentation(user));
}

/** A new user, or the full replacement of `previous`: fields the input omits are cleared. */
export function buildUser(tenant: string, id: string, input: UserInput, previous?: StoredUser): StoredUser {
  const now = new Date().toISOString();
  const user: User = {
    id,
    username: input.username,
    email: input.email,
    age: input.age ?? null,
    bio: input.bio ?? null,
    interests: input.interests ?? [],
    version: previous ? previous.version + 1 : 1,
    createdAt: previous?.createdAt ?? now,
    updatedAt: now,
  };
  return { ...user, tenant, etag: strongEtag(serializeUser(user)) };
}

export function userPath(id: string): string {
  return `/users/${encodeURIComponent(id)}`;
}
