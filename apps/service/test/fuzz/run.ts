// `npm run fuzz -- --inputs N [--seed S] [--store sqlite|postgres] [--max-seconds T]`: hostile input
// at scale. Starts the reference service, sends at least N generated inputs across every route
// (fuzz/inputs.ts) in rounds, checks every answer and, after every round, the ledger (checks.ts),
// then prints a summary. Exit code 0: every input sent and every check held; 1: a check failed or
// the time bound ended the run first; 2: bad options. Needs `npm run build` (the service's dist).
import { randomInt } from 'node:crypto';
import fc from 'fast-check';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import {
  type Answer,
  type Exchange,
  encode,
  type RawHttp,
  type RawRequest,
  rawHttp,
} from '../helpers/raw-http.js';
import { type StartedService, startService } from '../helpers/service.js';
import {
  checkAnswer,
  errorLogs,
  fixtureProblems,
  HostileCheckError,
  Ledger,
  type RowSource,
  readRows,
} from './checks.js';
import { bodyLimit, type Fixture } from './generators.js';
import { type FuzzInput, type FuzzIo, fuzzCategories, fuzzInputArb, runInput } from './inputs.js';

export const defaultMaxSeconds = 600;
export const defaultConcurrency = 4;
/** Inputs one lane sends per round; the ledger is checked after each round. */
const maxRoundRuns = 250;
const minRoundRuns = 10;
/** Distinct failures reported in full; more are only counted (a failure's kind: category and rule). */
const maxReportedFailures = 20;
/** How much of a failing raw request the summary prints. */
const shownRequestBytes = 4096;

export interface FuzzOptions {
  inputs: number;
  seed: number;
  store: 'sqlite' | 'postgres';
  maxSeconds: number;
  concurrency: number;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const usage =
  'usage: npm run fuzz -- --inputs N [--seed S] [--store sqlite|postgres] [--max-seconds T] [--concurrency C]';

/** Parses the command line; throws UsageError for anything unknown, missing or out of range. */
export function parseFuzzOptions(argv: readonly string[]): FuzzOptions {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.startsWith('--') ? (arg.split(/=(.*)/s, 2) as [string, string?]) : [arg];
    if (!['--inputs', '--seed', '--store', '--max-seconds', '--concurrency'].includes(name))
      throw new UsageError(`unknown option ${JSON.stringify(arg)}`);
    if (values.has(name)) throw new UsageError(`${name} given twice`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    values.set(name, value);
  }
  const integer = (name: string, min: number, max: number, fallback?: number): number => {
    const text = values.get(name);
    if (text === undefined) {
      if (fallback === undefined) throw new UsageError(`${name} is required`);
      return fallback;
    }
    if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max)
      throw new UsageError(`${name} must be a whole number in ${min}…${max}, not ${JSON.stringify(text)}`);
    return Number(text);
  };
  const store = values.get('--store') ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'postgres')
    throw new UsageError(`--store must be sqlite or postgres, not ${JSON.stringify(store)}`);
  return {
    inputs: integer('--inputs', 1, 100_000_000),
    // fast-check seeds are 32-bit integers.
    seed: integer('--seed', -(2 ** 31), 2 ** 31 - 1, randomInt(2 ** 31 - 1)),
    store,
    maxSeconds: integer('--max-seconds', 1, 7 * 24 * 3600, defaultMaxSeconds),
    concurrency: integer('--concurrency', 1, 64, defaultConcurrency),
  };
}

/** The seed of lane `lane` in round `round`: fixed by the run's seed, so `--seed` reproduces every input. */
export function laneSeed(seed: number, round: number, lane: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(round, 0x85ebca6b) + lane) | 0;
}

interface Failure {
  what: string;
  /** How many times a failure of this kind was found (each one shrunk). */
  times: number;
  category?: string;
  seed?: number;
  path?: string;
  shrinks?: number;
  counterexample?: string;
  message: string;
  request?: RawRequest;
}

interface Tally {
  inputs: number;
  perCategory: Map<string, number>;
  statuses: Map<number, number>;
  created: { users: number; orders: number };
  deleted: number;
  fixtures: number;
}

export async function runFuzz(
  options: FuzzOptions,
  log: (line: string) => void,
  progress: (line: string) => void,
) {
  const startedAtMs = Date.now();
  const deadlineMs = startedAtMs + options.maxSeconds * 1000;
  const elapsedSeconds = () => (Date.now() - startedAtMs) / 1000;
  log(
    `fuzz: seed ${options.seed} — reproduce with: npm run fuzz -- --inputs ${options.inputs} --seed ${options.seed} --store ${options.store}`,
  );
  let postgres: TestDatabase | undefined;
  let service: StartedService | undefined;
  const failures: Failure[] = [];
  let unreported = 0;
  /** Keeps the first (shrunk) failure of each kind and counts the rest. */
  const addFailure = (failure: Omit<Failure, 'times'>) => {
    const kind = (f: Omit<Failure, 'times'>) =>
      `${f.category ?? f.what}|${(f.message.split('\n')[0] ?? '').replace(/\d+/g, 'N')}`;
    const same = failures.find((known) => kind(known) === kind(failure));
    if (same) same.times++;
    else if (failures.length < maxReportedFailures) failures.push({ ...failure, times: 1 });
    else unreported++;
  };
  const tally: Tally = {
    inputs: 0,
    perCategory: new Map(fuzzCategories.map((c) => [c.name, 0])),
    statuses: new Map(),
    created: { users: 0, orders: 0 },
    deleted: 0,
    fixtures: 0,
  };
  let rounds = 0;
  const failingInputs = () => failures.reduce((sum, f) => sum + f.times, unreported);
  let stoppedBy = 'every requested input was sent';
  try {
    // Warnings and errors only: the per-request info lines of 100,000 inputs would fill memory.
    const env = { LOG_LEVEL: 'warn' };
    if (options.store === 'postgres') {
      postgres = await createTestDatabase('retrysafe_fuzz');
      // The checker's own pool: DROP DATABASE … WITH (FORCE) at the end terminates a client that
      // pool.end() has not closed yet, and an idle client's error without a listener would crash the run.
      postgres.pool.on('error', () => {});
      service = await startService({ databaseUrl: postgres.url, env });
    } else service = await startService({ env });
    const target = service;
    const source: RowSource =
      postgres !== undefined
        ? { kind: 'postgres', pool: postgres.pool }
        : { kind: 'sqlite', path: target.dbPath };
    const http: RawHttp = rawHttp(target.url, { bodyLimitBytes: bodyLimit });
    log(
      `fuzz: ${options.store} service at ${target.url}, ${options.concurrency} lanes, at most ${options.maxSeconds} s`,
    );

    const send = async (request: RawRequest): Promise<Exchange> => {
      const exchange = await http.send(request);
      count(exchange.answer);
      return exchange;
    };
    const count = (answer: Answer | undefined) => {
      const status = answer?.status ?? 0;
      tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1);
    };
    const makeIo = (ledger: () => Ledger, fixture: Fixture): FuzzIo => ({
      send,
      sendBytes: async (bytes, head, afterWrite) => {
        const answer = await http.sendBytes(bytes, head, afterWrite);
        count(answer);
        return answer;
      },
      expect(exchange, allowed, rules) {
        const answer = checkAnswer(exchange, allowed, rules);
        if (exchange.answer) ledger().noteAnswer(exchange, answer);
        return answer;
      },
      noteDeleted: (table, id) => ledger().deleted[table].add(id),
      fixture,
    });
    const createFixture = async (ledger: Ledger): Promise<Fixture> => {
      const username = `fixture_${randomInt(2 ** 47).toString(16)}`;
      const exchange = await send({
        method: 'POST',
        target: '/users',
        headers: [['Content-Type', 'application/json']],
        body: JSON.stringify({ username, email: 'fixture@example.com', bio: 'stays' }),
      });
      const answer = checkAnswer(exchange, [201]);
      ledger.noteAnswer(exchange, answer);
      const { id } = JSON.parse(answer.body) as { id: string };
      const fixture = { id, username, etag: answer.headers.etag!, text: answer.body };
      ledger.fixtures.push(fixture);
      return fixture;
    };
    const failureOf = (
      what: string,
      details: fc.RunDetails<[FuzzInput]>,
      seed: number,
    ): Omit<Failure, 'times'> => {
      const error = details.errorInstance;
      const input = details.counterexample?.[0];
      return {
        what,
        ...(input ? { category: input.category, counterexample: fc.stringify(input.value) } : {}),
        seed,
        path: details.counterexamplePath ?? '',
        shrinks: details.numShrinks,
        message: error instanceof Error ? error.message : String(error),
        ...(error instanceof HostileCheckError && error.exchange ? { request: error.exchange.request } : {}),
      };
    };
    let perInputLedger: Ledger | undefined;
    /** One lane's property: sends inputs until its runs are done or the time bound passes. */
    const lane = (io: FuzzIo, perInput?: { fixture: Fixture }) =>
      fc.asyncProperty(fuzzInputArb, async (input) => {
        if (Date.now() >= deadlineMs) return;
        tally.inputs++;
        tally.perCategory.set(input.category, (tally.perCategory.get(input.category) ?? 0) + 1);
        if (perInput === undefined) return runInput(input, io);
        // Bisecting a ledger failure: the same inputs again, with the ledger checked after each.
        const ledger = new Ledger(await readRows(source));
        perInputLedger = ledger;
        await runInput(input, io);
        const problems = [
          ...ledger.problems(await readRows(source)),
          ...(await fixtureProblems([perInput.fixture], send)),
        ];
        if (problems.length > 0) throw new HostileCheckError(`half-written: ${problems.join('; ')}`);
      });

    /** Runs each lane of a round again alone, checking the ledger after every input, to shrink a half-write. */
    async function bisect(
      round: number,
      fixtures: Fixture[],
      seeds: number[],
      runs: number,
    ): Promise<Omit<Failure, 'times'>[]> {
      const found: Omit<Failure, 'times'>[] = [];
      for (let i = 0; i < fixtures.length; i++) {
        const fixture = fixtures[i]!;
        const io = makeIo(() => perInputLedger!, fixture);
        const details = await fc.check(lane(io, { fixture }), { seed: seeds[i]!, numRuns: runs });
        if (details.failed)
          found.push(failureOf(`round ${round}, lane ${i} (the ledger, input by input)`, details, seeds[i]!));
      }
      return found;
    }

    let nextProgress = 1;
    while (tally.inputs < options.inputs) {
      if (Date.now() >= deadlineMs) {
        stoppedBy = `the time bound (${options.maxSeconds} s)`;
        break;
      }
      const round = rounds++;
      const remaining = options.inputs - tally.inputs;
      const runs = Math.max(
        1,
        Math.min(
          Math.ceil(remaining / options.concurrency),
          Math.max(
            minRoundRuns,
            Math.min(maxRoundRuns, Math.ceil(options.inputs / (options.concurrency * 20))),
          ),
        ),
      );
      const ledger = new Ledger(await readRows(source));
      const firstLogLine = target.logs.length;
      const fixtures: Fixture[] = [];
      for (let i = 0; i < options.concurrency; i++) fixtures.push(await createFixture(ledger));
      tally.fixtures += fixtures.length;
      const seeds = fixtures.map((_, i) => laneSeed(options.seed, round, i));
      const results = await Promise.all(
        fixtures.map((fixture, i) =>
          fc.check(lane(makeIo(() => ledger, fixture)), { seed: seeds[i]!, numRuns: runs }),
        ),
      );
      results.forEach((details, i) => {
        if (details.failed) addFailure(failureOf(`round ${round}, lane ${i}`, details, seeds[i]!));
      });

      // The round's ledger: the process is up and nothing was half-written or logged as an error.
      const problems: string[] = [];
      if (target.process.exitCode !== null || target.process.signalCode !== null)
        problems.push(`the service exited (${target.process.signalCode ?? target.process.exitCode})`);
      else {
        const health = await fetch(new URL('/healthz', target.url)).catch(() => undefined);
        if (health?.status !== 200) problems.push(`/healthz answered ${health?.status ?? 'nothing'}`);
      }
      if (problems.length === 0) {
        problems.push(...ledger.problems(await readRows(source)), ...(await fixtureProblems(fixtures, send)));
        for (const record of errorLogs(target.logs.slice(firstLogLine)))
          problems.push(`logged an error: ${JSON.stringify(record).slice(0, 600)}`);
      }
      tally.created.users += ledger.created.users.size;
      tally.created.orders += ledger.created.orders.size;
      tally.deleted += ledger.deleted.users.size;
      if (problems.length > 0) {
        const bisected = problems.some((p) => p.startsWith('the service') || p.startsWith('/healthz'))
          ? []
          : await bisect(round, fixtures, seeds, runs);
        if (bisected.length > 0) for (const failure of bisected) addFailure(failure);
        else
          addFailure({
            what: `round ${round} (lane seeds ${seeds.join(', ')}, ${runs} runs each): the ledger check`,
            message: problems.join('\n'),
          });
        if (problems.some((p) => p.startsWith('the service'))) {
          stoppedBy = 'the service exited';
          break;
        }
      }
      const reached = Math.min(10, Math.floor((tally.inputs * 10) / options.inputs));
      if (reached >= nextProgress) {
        progress(
          `fuzz: ${reached * 10}% — ${tally.inputs}/${options.inputs} inputs, ${http.requests} requests, ${elapsedSeconds().toFixed(0)} s, ${failingInputs()} failing input(s)`,
        );
        nextProgress = reached + 1;
      }
    }
  } catch (error) {
    addFailure({
      what: 'the run itself',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    stoppedBy = 'an error in the run';
  } finally {
    await service?.stop().catch(() => undefined);
    await postgres?.drop().catch(() => undefined);
  }

  const complete = tally.inputs >= options.inputs;
  const verdict = failures.length > 0 ? 'FAIL' : complete ? 'PASS' : 'INCOMPLETE';
  const seconds = elapsedSeconds();
  const lines = [
    `fuzz summary: ${verdict}`,
    `  seed ${options.seed}, store ${options.store}, ${tally.inputs} inputs (requested ${options.inputs}) in ${seconds.toFixed(1)} s, ${rounds} rounds × ${options.concurrency} lanes; stopped by ${stoppedBy}`,
    '  inputs per category:',
    ...[...tally.perCategory].map(([name, n]) => `    ${name}: ${n}`),
    `  answers by status (0: closed without an answer): ${[...tally.statuses]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}: ${n}`)
      .join(', ')}`,
    `  ledger: ${tally.created.users} users and ${tally.created.orders} orders created by 2xx answers (${tally.fixtures} of the users fixtures, all unchanged), ${tally.deleted} users deleted by 204s; every row accounted for, no claim left open, no refusal stored${failures.length > 0 ? ' — except as the failures say' : ''}`,
    `  failures: ${failingInputs()} failing input(s)${failures.length > 0 ? ` of ${failures.length}${unreported > 0 ? '+' : ''} kind(s); the first of each kind, shrunk:` : ''}`,
  ];
  failures.forEach((failure, i) => {
    lines.push(
      `  failure ${i + 1} (${failure.times} time(s)): ${failure.what}${failure.category ? ` — ${failure.category}` : ''}`,
    );
    if (failure.seed !== undefined)
      lines.push(
        `    fast-check seed ${failure.seed}, path ${JSON.stringify(failure.path)}, shrunk ${failure.shrinks} time(s)`,
      );
    if (failure.counterexample !== undefined)
      lines.push(`    smallest counterexample: ${failure.counterexample}`);
    lines.push(...failure.message.split('\n').map((line) => `    ${line}`));
    if (failure.request) {
      const bytes = encode(failure.request);
      const shown = bytes.subarray(0, shownRequestBytes).toString('latin1');
      lines.push(
        `    exact raw request (${bytes.length} bytes${bytes.length > shownRequestBytes ? `, first ${shownRequestBytes} shown` : ''}): ${JSON.stringify(shown)}`,
      );
    }
  });
  for (const line of lines) log(line);
  return { verdict, failures, tally, seconds };
}

async function main(): Promise<number> {
  let options: FuzzOptions;
  try {
    options = parseFuzzOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`fuzz: ${error.message}\n${usage}\n`);
    return 2;
  }
  const { verdict } = await runFuzz(
    options,
    (line) => process.stdout.write(`${line}\n`),
    (line) => process.stderr.write(`${line}\n`),
  );
  return verdict === 'PASS' ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `fuzz: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
