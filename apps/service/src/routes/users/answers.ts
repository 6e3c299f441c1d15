// The answers and refusals the /users handlers share: representations with their ETag, and
// the problems for a taken username, a lost race and an unknown id.

import type { ResponseDraft } from 'retrysafe';
import { ConflictError, NotFoundError, PreconditionFailedError } from 'retrysafe/http';
import { type StoredUser, serializeUser, userPath } from '../../domain/users.js';

export type IdParams = { Params: { id: string } };

export function representation(status: number, user: StoredUser): ResponseDraft {
  return {
    status,
    headers: { etag: user.etag, 'content-type': 'application/json; charset=utf-8' },
    body: serializeUser(user),
  };
}

export function created(user: StoredUser, location: string): ResponseDraft {
  const draft = representation(201, user);
  return { ...draft, headers: { ...draft.headers, location } };
}

export function usernameTaken(username: string, existingId: string): ConflictError {
  return new ConflictError(`Username '${username}' is already taken.`, 'username-taken', {
    existing: userPath(existingId),
  });
}

export function changedMeanwhile(id: string): PreconditionFailedError {
  return new PreconditionFailedError(`User ${id} was changed by someone else: reload it and try again.`);
}

export function userNotFound(id: string): NotFoundError {
  return new NotFoundError(`There is no user ${id}.`);
}
