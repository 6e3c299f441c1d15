// /users: profiles created with POST (201 + Location, or 303 for HTML forms) and replaced
// with PUT under If-Match; create-by-PUT with If-None-Match: *.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ResponseDraft } from 'retrysafe';
import {
  BadRequestError,
  ConflictError,
  evaluateWritePreconditions,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
  parseEntityTagList,
  ValidationError,
  type WriteIntent,
  weakMatch,
} from 'retrysafe/http';
import { principalOf } from '../auth.js';
import type { ServiceData } from '../data/types.js';
import {
  buildUser,
  type StoredUser,
  serializeUser,
  type UserInput,
  userPath,
  userRepresentation,
} from '../domain/users.js';
import {
  idParamsSchema,
  problemResponses,
  userInputSchema,
  userReplaceSchema,
  userSchema,
} from '../schemas.js';
import type { TestHooks } from '../test-hooks.js';
import { validateParamsFirst } from '../validation.js';
import { listRoute } from './list.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type IdParams = { Params: { id: string } };
type ReplaceBody = UserInput & { id?: string; version?: number; createdAt?: string; updatedAt?: string };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the PUT/DELETE precondition hook: the row the preconditions were checked against. */
    userWrite: { current: StoredUser | undefined; intent: WriteIntent } | null;
  }
}

export function userRoutes<Tx>(app: FastifyInstance, data: ServiceData<Tx>, hooks: TestHooks): void {
  app.decorateRequest('userWrite', null);

  app.post<{ Body: UserInput }>(
    '/users',
    {
      config: { idempotency: 'optional' },
      schema: {
        summary: 'Create a user',
        description:
          'JSON or an HTML form. 201 with Location and ETag; 303 See Other for a form post that accepts text/html. An optional Idempotency-Key makes retries replay.',
        tags: ['users'],
        body: userInputSchema,
        response: { 201: userSchema, ...problemResponses(400, 401, 403, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      await hooks.beforeWrites(request);
      // Derived from the idempotency record when there is a key (fresh otherwise).
      const id = request.idempotency!.idFor('user');
      const seeOther = wantsHtmlRedirect(request);
      return reply.idempotent<Tx>(async (tx) => {
        let user = buildUser(tenant, id, request.body);
        const result = await data.users.insert(tx, user);
        // Our own row from an earlier run of this key (records in Redis): answer with it.
        const earlierRun = !result.ok && (result.reason === 'id-taken' || result.existingId === id);
        const existing = earlierRun ? await data.users.get(tenant, id) : undefined;
        if (existing) user = existing;
        else if (!result.ok) {
          if (result.reason === 'username-taken') throw usernameTaken(user.username, result.existingId);
          throw new Error('a freshly generated user id collided');
        }
        await hooks.afterWrites(request);
        const location = userPath(user.id);
        if (seeOther) {
          return {
            status: 303,
            headers: { location, 'content-type': 'text/plain; charset=utf-8' },
            body: `See ${location}`,
          };
        }
        return created(user, location);
      });
    },
  );

  app.get<IdParams>(
    '/users/:id',
    {
      schema: {
        summary: 'Read a user',
        tags: ['users'],
        params: idParamsSchema,
        response: { 200: userSchema, ...problemResponses(401, 404) },
      },
    },
    async (request, reply) => {
      const user = await data.users.get(principalOf(request).tenant, request.params.id);
      if (!user) throw userNotFound(request.params.id);
      const ifNoneMatch = parseEntityTagList(request.headers['if-none-match'] ?? '');
      if (ifNoneMatch && weakMatch(ifNoneMatch, user.etag)) {
        return reply.code(304).header('etag', user.etag).send();
      }
      return reply
        .header('etag', user.etag)
        .type('application/json; charset=utf-8')
        .send(serializeUser(user));
    },
  );

  listRoute(app, {
    path: '/users',
    summary: 'List users, oldest first',
    tag: 'users',
    itemSchema: userSchema,
    list: (tenant, afterSeq, limit) => data.users.list(tenant, afterSeq, limit),
    represent: userRepresentation,
  });

  app.put<IdParams & { Body: ReplaceBody }>(
    '/users/:id',
    {
      // The id is validated before the precondition hook looks it up (a NUL in it was a 500 on PostgreSQL).
      preValidation: [validateParamsFirst, checkWritePreconditions],
      schema: {
        summary: 'Replace a user (or create one at a client-chosen UUID)',
        description:
          'Requires If-Match with the current ETag (428 without, 412 when stale). With If-None-Match: * at an unused UUID it creates the user (201). Fields left out are cleared. Prefer: return=minimal answers 204.',
        tags: ['users'],
        params: idParamsSchema,
        body: userReplaceSchema,
        response: {
          200: userSchema,
          201: userSchema,
          ...problemResponses(400, 401, 403, 404, 409, 412, 415, 422, 428),
        },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      const { id } = request.params;
      const { current, intent } = request.userWrite!;
      const { id: bodyId, version, createdAt: _c, updatedAt: _u, ...input } = request.body;
      if (bodyId !== undefined && bodyId !== id) {
        throw new ValidationError([
          { pointer: '/id', detail: `must be ${id}, the id in the path, or be left out` },
        ]);
      }
      if (version !== undefined && current !== undefined && version !== current.version) {
        throw new ConflictError(
          `The body says version ${version} but user ${id} is at version ${current.version}: reload it and try again.`,
          'stale-version',
        );
      }
      await hooks.beforeWrites(request);
      const user = buildUser(tenant, id, input, current);
      return reply.idempotent<Tx>(async (tx) => {
        if (intent === 'create') {
          const result = await data.users.insert(tx, user);
          if (!result.ok && result.reason === 'id-taken')
            throw new PreconditionFailedError(`User ${id} already exists.`);
          if (!result.ok && result.reason === 'username-taken')
            throw usernameTaken(user.username, result.existingId);
          return created(user, userPath(id));
        }
        const result = await data.users.replace(tx, user, current!.etag);
        if (!result.ok && result.reason === 'stale') throw changedMeanwhile(id);
        if (!result.ok && result.reason === 'username-taken')
          throw usernameTaken(user.username, result.existingId);
        if (prefersMinimal(request)) return { status: 204, headers: { etag: user.etag } };
        return representation(200, user);
      });
    },
  );

  app.delete<IdParams>(
    '/users/:id',
    {
      schema: {
        summary: 'Delete a user',
        description: 'Requires If-Match with the current ETag.',
        tags: ['users'],
        params: idParamsSchema,
        response: {
          204: { type: 'null', description: 'Deleted' },
          ...problemResponses(401, 403, 404, 412, 428),
        },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      const { id } = request.params;
      const current = await data.users.get(tenant, id);
      if (!current) throw userNotFound(id);
      const ifMatch = request.headers['if-match'];
      if (ifMatch === undefined) {
        throw new PreconditionRequiredError(`Deleting user ${id} requires If-Match with its current ETag.`);
      }
      evaluateWritePreconditions({
        ifMatch,
        ifNoneMatch: undefined,
        currentEtag: current.etag,
        resource: `User ${id}`,
        requireIfMatch: true,
      });
      const deleted = await data.transaction((tx) => data.users.delete(tx, tenant, id, current.etag));
      if (!deleted) throw changedMeanwhile(id);
      return reply.code(204).send();
    },
  );

  /** Existence and preconditions are decided before the body is validated (RFC 9110 §13.2.1). */
  async function checkWritePreconditions(
    request: FastifyRequest<IdParams>,
    _reply: FastifyReply,
  ): Promise<void> {
    const { id } = request.params;
    const current = await data.users.get(principalOf(request).tenant, id);
    const ifMatch = request.headers['if-match'];
    const ifNoneMatch = request.headers['if-none-match'];
    if (!current && ifMatch === undefined && ifNoneMatch === undefined) {
      throw new PreconditionRequiredError(
        `User ${id} does not exist. To create it at this id, send If-None-Match: * (the id must be a UUID).`,
      );
    }
    const intent = evaluateWritePreconditions({
      ifMatch,
      ifNoneMatch,
      currentEtag: current?.etag,
      resource: `User ${id}`,
      requireIfMatch: true,
    });
    if (intent === 'create' && !uuidPattern.test(id)) {
      throw new BadRequestError(
        `A user created with PUT needs a UUID as its id; ${id} is not one.`,
        'invalid-id',
      );
    }
    request.userWrite = { current, intent };
  }
}

function representation(status: number, user: StoredUser): ResponseDraft {
  return {
    status,
    headers: { etag: user.etag, 'content-type': 'application/json; charset=utf-8' },
    body: serializeUser(user),
  };
}

function created(user: StoredUser, location: string): ResponseDraft {
  const draft = representation(201, user);
  return { ...draft, headers: { ...draft.headers, location } };
}

function usernameTaken(username: string, existingId: string): ConflictError {
  return new ConflictError(`Username '${username}' is already taken.`, 'username-taken', {
    existing: userPath(existingId),
  });
}

function changedMeanwhile(id: string): PreconditionFailedError {
  return new PreconditionFailedError(`User ${id} was changed by someone else: reload it and try again.`);
}

function userNotFound(id: string): NotFoundError {
  return new NotFoundError(`There is no user ${id}.`);
}

function wantsHtmlRedirect(request: FastifyRequest): boolean {
  return (
    (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') &&
    (request.headers.accept ?? '').includes('text/html')
  );
}

function prefersMinimal(request: FastifyRequest): boolean {
  const prefer = request.headers.prefer;
  return /(^|[,;\s])return=minimal\b/.test(Array.isArray(prefer) ? prefer.join(',') : (prefer ?? ''));
}
