// Shared by the hostile-*.test.ts files (issue 5): one service per file, checked after every case.
// The generators and the rules every answer must follow live in fuzz/ (the long fuzz run uses
// them too) and are re-exported here for the tests.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { checkAnswer, errorLogs, fixtureProblems, Ledger, type RowSource, readRows } from './fuzz/checks.js';
import { bodyLimit, type Fixture, seed } from './fuzz/generators.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { type Answer, type Exchange, type RawHttp, type RawRequest, rawHttp } from './helpers/raw-http.js';
import { type StartedService, startService } from './helpers/service.js';

export {
  type BodyRoute,
  bodyLimit,
  bodyRequest,
  bodyRouteArb,
  type Fixture,
  freshKey,
  isUnstorable,
  problemOf,
  problemPrefix,
  seed,
  unicodePlacement,
  unicodePlaces,
  unicodeTextArb,
  usernameArb,
  validOrderArb,
  validUserArb,
} from './fuzz/generators.js';

// ---------------------------------------------------------------------------------------------
// One service per file, checked after every case.

export interface HostileService {
  readonly service: StartedService;
  /** The throwaway PostgreSQL database, when the service runs on one. */
  readonly postgres: TestDatabase | undefined;
  send(request: RawRequest): Promise<Exchange>;
  sendBytes(bytes: Buffer, head: boolean, afterWrite: 'wait' | 'end' | 'abort'): Promise<Answer | undefined>;
  /**
   * The answer must exist (unless `mayClose`), never be 5xx, be one of `allowed`, and every 4xx
   * must be problem+json with type, title, status equal to the HTTP status, and detail.
   * 201/303 answers are remembered as this case's legitimate creations.
   */
  expectAnswer(exchange: Exchange, allowed: readonly number[], options?: { mayClose?: boolean }): Answer;
  /** Creates a user for the running case only. */
  createFixture(): Promise<Fixture>;
  /** Runs a fast-check property with the fixed seed, counting its runs under `category`. */
  check<T>(
    category: string,
    arbitrary: fc.Arbitrary<T>,
    numRuns: number,
    run: (value: T) => Promise<void>,
  ): Promise<void>;
  expectServiceUp(): Promise<void>;
}

/**
 * Starts one service for the calling test file (SQLite by default) and, after every case,
 * checks that it is still up and that the case left nothing half-written: every new row came
 * from a 2xx the case saw, no idempotency claim is left, no refusal was stored as a response,
 * the case's fixtures are unchanged, and nothing was logged as an error.
 */
export function hostileService(options: { postgres?: boolean } = {}): HostileService {
  let started: StartedService | undefined;
  let postgres: TestDatabase | undefined;
  let http: RawHttp | undefined;
  let ledger: { rows: Ledger; firstLogLine: number } | undefined;
  const tried = new Map<string, number>();

  const service = (): StartedService => {
    if (started === undefined) throw new Error('the hostile service is not running (use it inside a case)');
    return started;
  };
  const client = (): RawHttp => {
    if (http === undefined) throw new Error('the hostile service is not running (use it inside a case)');
    return http;
  };
  const currentCase = (): { rows: Ledger; firstLogLine: number } => {
    if (ledger === undefined) throw new Error('no case is running');
    return ledger;
  };

  const rowSource = (): RowSource =>
    postgres !== undefined
      ? { kind: 'postgres', pool: postgres.pool }
      : { kind: 'sqlite', path: service().dbPath };
  const caseLogs = (fromLine: number) => errorLogs(service().logs.slice(fromLine));

  const hostile: HostileService = {
    get service() {
      return service();
    },
    get postgres() {
      return postgres;
    },
    send: (request) => client().send(request),
    sendBytes: (bytes, head, afterWrite) => client().sendBytes(bytes, head, afterWrite),
    expectAnswer(exchange, allowed, expectOptions = {}) {
      const answer = checkAnswer(exchange, allowed, expectOptions);
      if (exchange.answer) currentCase().rows.noteAnswer(exchange, answer);
      return answer;
    },
    async createFixture() {
      const username = `fixture_${randomBytes(8).toString('hex')}`;
      const exchange = await hostile.send({
        method: 'POST',
        target: '/users',
        headers: [['Content-Type', 'application/json']],
        body: JSON.stringify({ username, email: 'fixture@example.com', bio: 'stays' }),
      });
      const answer = hostile.expectAnswer(exchange, [201]);
      const { id } = JSON.parse(answer.body) as { id: string };
      const fixture = { id, username, etag: answer.headers.etag!, text: answer.body };
      currentCase().rows.fixtures.push(fixture);
      return fixture;
    },
    async check(category, arbitrary, numRuns, run) {
      await fc.assert(
        fc.asyncProperty(arbitrary, (value) => {
          tried.set(category, (tried.get(category) ?? 0) + 1);
          return run(value);
        }),
        { seed, numRuns },
      );
    },
    async expectServiceUp() {
      const target = service();
      expect(target.process.exitCode).toBeNull();
      expect(target.process.signalCode).toBeNull();
      const health = await fetch(new URL('/healthz', target.url));
      expect(health.status).toBe(200);
    },
  };

  beforeAll(async () => {
    if (options.postgres) {
      postgres = await createTestDatabase('retrysafe_hostile');
      started = await startService({ databaseUrl: postgres.url });
    } else {
      started = await startService();
    }
    http = rawHttp(started.url, { bodyLimitBytes: bodyLimit });
  });

  beforeEach(async () => {
    ledger = { rows: new Ledger(await readRows(rowSource())), firstLogLine: service().logs.length };
  });

  // Every case ends with the process alive and healthy, and nothing half-written: every new row
  // came from a 2xx the case saw, no idempotency claim is left, no refusal was stored as a
  // response, the case's fixtures are unchanged, and nothing was logged as an error.
  afterEach(async () => {
    const done = currentCase();
    ledger = undefined;
    await hostile.expectServiceUp();
    expect(done.rows.problems(await readRows(rowSource()))).toEqual([]);
    expect(await fixtureProblems(done.rows.fixtures, hostile.send)).toEqual([]);
    expect(caseLogs(done.firstLogLine)).toEqual([]);
  });

  afterAll(async () => {
    try {
      const total = [...tried.values()].reduce((sum, n) => sum + n, 0);
      const lines = [...tried].map(([category, n]) => `  ${category}: ${n}`);
      console.info(
        `hostile input: ${total} generated inputs (${http?.requests ?? 0} HTTP requests), seed ${seed}\n${lines.join('\n')}`,
      );
      // Log lines can arrive after their case ended: the whole run is checked once more.
      if (started !== undefined) expect(caseLogs(0)).toEqual([]);
    } finally {
      await started?.stop();
      await postgres?.drop();
    }
  });

  return hostile;
}
