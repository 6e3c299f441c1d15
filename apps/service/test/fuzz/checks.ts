// The rules every answer to hostile input must follow and the ledger check that nothing was
// half-written, shared by the hostile-*.test.ts suite and the long fuzz run. No test runner here:
// a broken rule throws a HostileCheckError that carries the exchange, so both can report it.
import Database from 'better-sqlite3';
import type pg from 'pg';
import { type Answer, describeExchange, type Exchange, type RawRequest } from '../helpers/raw-http.js';
import { type Fixture, problemPrefix, refusalStatuses } from './generators.js';

/** A broken rule; `exchange` is the request and answer that broke it, when one did. */
export class HostileCheckError extends Error {
  override readonly name = 'HostileCheckError';
  readonly exchange: Exchange | undefined;

  constructor(message: string, exchange?: Exchange) {
    super(exchange === undefined ? message : `${message}\n${describeExchange(exchange)}`);
    this.exchange = exchange;
  }
}

export interface AnswerRules {
  /** A closed connection without an answer is acceptable (the client aborted on purpose). */
  mayClose?: boolean;
}

/**
 * The answer must exist (unless `mayClose`), never be 5xx, be one of `allowed`, and every 4xx
 * must be problem+json with a `urn:retrysafe:problem:` type, a title, a `status` equal to the
 * HTTP status, and a detail. Returns the answer (status 0 for an allowed close).
 */
export function checkAnswer(exchange: Exchange, allowed: readonly number[], rules: AnswerRules = {}): Answer {
  const { answer, request } = exchange;
  const fail = (what: string): never => {
    throw new HostileCheckError(what, exchange);
  };
  if (!answer) {
    if (rules.mayClose) return { status: 0, headers: {}, body: '' };
    return fail('the server closed without an answer');
  }
  if (!(answer.status < 500)) fail(`a ${answer.status} answer (5xx) to hostile input`);
  if (!allowed.includes(answer.status)) fail(`status ${answer.status} is not one of ${allowed.join(', ')}`);
  if (answer.status >= 400) {
    if (!/^application\/problem\+json/.test(answer.headers['content-type'] ?? ''))
      fail(`a ${answer.status} that is not application/problem+json`);
    if (request.method !== 'HEAD') {
      let problem: Record<string, unknown> = {};
      try {
        problem = JSON.parse(answer.body) as Record<string, unknown>;
      } catch {
        fail('a problem+json body that does not parse');
      }
      if (problem.status !== answer.status) fail(`problem.status ${String(problem.status)} ≠ HTTP status`);
      if (!new RegExp(`^${problemPrefix}[a-z-]+$`).test(String(problem.type)))
        fail(`problem.type ${String(problem.type)} is not ${problemPrefix}<name>`);
      if (typeof problem.title !== 'string' || problem.title.length === 0) fail('problem.title is missing');
      if (typeof problem.detail !== 'string' || problem.detail.length === 0)
        fail('problem.detail is missing');
    }
  }
  return answer;
}

/** The `users`/`orders` row a 201 or 303 points at, or undefined for other answers. */
export function creationOf(exchange: Exchange, answer: Answer): { table: Table; id: string } | undefined {
  if (answer.status !== 201 && answer.status !== 303) return undefined;
  const match = /^\/(users|orders)\/([0-9a-f-]{36})$/.exec(answer.headers.location ?? '');
  if (match === null) throw new HostileCheckError(`a ${answer.status} without a row's Location`, exchange);
  return { table: match[1] as Table, id: match[2]! };
}

// ---------------------------------------------------------------------------------------------
// The ledger: what the database holds against what the answers said.

export type Table = 'users' | 'orders';

export interface Rows {
  users: string[];
  orders: string[];
  /** Idempotency records still claimed (a run that never settled). */
  claimed: number;
  /** Distinct statuses of completed idempotency records. */
  storedStatuses: number[];
}

/** Where the service keeps its rows: a SQLite file (read read-only) or a PostgreSQL pool. */
export type RowSource = { kind: 'sqlite'; path: string } | { kind: 'postgres'; pool: pg.Pool };

export async function readRows(source: RowSource): Promise<Rows> {
  if (source.kind === 'postgres') {
    const { pool } = source;
    const ids = async (table: Table) =>
      (await pool.query<{ id: string }>(`SELECT id::text AS id FROM ${table}`)).rows.map((r) => r.id);
    const claimed = await pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM retrysafe_idempotency WHERE state = 'claimed'",
    );
    const stored = await pool.query<{ status: number }>(
      "SELECT DISTINCT status FROM retrysafe_idempotency WHERE state = 'completed'",
    );
    return {
      users: await ids('users'),
      orders: await ids('orders'),
      claimed: claimed.rows[0]?.n ?? 0,
      storedStatuses: stored.rows.map((r) => Number(r.status)),
    };
  }
  const db = new Database(source.path, { readonly: true, fileMustExist: true });
  try {
    return {
      users: db.prepare('SELECT id FROM users').pluck().all() as string[],
      orders: db.prepare('SELECT id FROM orders').pluck().all() as string[],
      claimed: db
        .prepare("SELECT count(*) FROM retrysafe_idempotency WHERE state = 'claimed'")
        .pluck()
        .get() as number,
      storedStatuses: db
        .prepare("SELECT DISTINCT status FROM retrysafe_idempotency WHERE state = 'completed'")
        .pluck()
        .all() as number[],
    };
  } finally {
    db.close();
  }
}

/** What one stretch of hostile input (a test case, a fuzz round) saw, to hold the rows against. */
export class Ledger {
  readonly created = { users: new Set<string>(), orders: new Set<string>() };
  /** Rows a 204 DELETE removed. */
  readonly deleted = { users: new Set<string>(), orders: new Set<string>() };
  readonly fixtures: Fixture[] = [];
  private readonly before: { users: Set<string>; orders: Set<string> };

  constructor(rows: Rows) {
    this.before = { users: new Set(rows.users), orders: new Set(rows.orders) };
  }

  /** Remembers the row a 201/303 created (checks it names one). */
  noteAnswer(exchange: Exchange, answer: Answer): void {
    const creation = creationOf(exchange, answer);
    if (creation) this.created[creation.table].add(creation.id);
  }

  /**
   * Why `rows` (read after the stretch) are not what the answers said, or [] when they are:
   * every new row came from a 2xx the stretch saw, every creation it saw is a row and every
   * earlier row is still there (minus the rows its 204 DELETEs removed), no idempotency claim is left, and no refusal made before the
   * handler ran was stored as a response.
   */
  problems(rows: Rows): string[] {
    const problems: string[] = [];
    for (const table of ['users', 'orders'] as const) {
      const present = new Set(rows[table]);
      const created = this.created[table];
      const deleted = this.deleted[table];
      const unexplained = rows[table].filter((id) => !this.before[table].has(id) && !created.has(id));
      if (unexplained.length > 0)
        problems.push(
          `${table}: ${unexplained.length} row(s) no 2xx created: ${unexplained.slice(0, 5).join(', ')}`,
        );
      const missing = [...created].filter((id) => !present.has(id) && !deleted.has(id));
      if (missing.length > 0)
        problems.push(
          `${table}: ${missing.length} created row(s) missing: ${missing.slice(0, 5).join(', ')}`,
        );
      const vanished = [...this.before[table]].filter((id) => !present.has(id) && !deleted.has(id));
      if (vanished.length > 0)
        problems.push(
          `${table}: ${vanished.length} earlier row(s) vanished: ${vanished.slice(0, 5).join(', ')}`,
        );
      const resurrected = [...deleted].filter((id) => present.has(id));
      if (resurrected.length > 0)
        problems.push(
          `${table}: ${resurrected.length} deleted row(s) still there: ${resurrected.slice(0, 5).join(', ')}`,
        );
    }
    if (rows.claimed !== 0) problems.push(`${rows.claimed} idempotency claim(s) left open`);
    const storedRefusals = rows.storedStatuses.filter((status) => refusalStatuses.includes(status));
    if (storedRefusals.length > 0)
      problems.push(`refusals stored as responses: ${storedRefusals.join(', ')}`);
    return problems;
  }
}

/** Why a fixture is not exactly as created (its representation and ETag), or [] when none changed. */
export async function fixtureProblems(
  fixtures: readonly Fixture[],
  send: (request: RawRequest) => Promise<Exchange>,
): Promise<string[]> {
  const problems: string[] = [];
  for (const fixture of fixtures) {
    const { answer } = await send({ target: `/users/${fixture.id}` });
    if (answer?.body !== fixture.text || answer.headers.etag !== fixture.etag)
      problems.push(`fixture ${fixture.id} changed: ${answer?.status} ${answer?.body.slice(0, 200)}`);
  }
  return problems;
}

/** Log records at level error (50) or above, from the service's stdout lines. */
export function errorLogs(lines: readonly string[]): Record<string, unknown>[] {
  return lines
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => Number(record.level) >= 50);
}
