// Docs that run: the three payment examples (docs/examples/payments-*.ts) serve the same
// contract over real HTTP, and `npm run example`'s runner starts each on the port it is given.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPayments as startExpress } from '../../docs/examples/payments-express.js';
import { startPayments as startFastify } from '../../docs/examples/payments-fastify.js';
import { startPayments as startHono } from '../../docs/examples/payments-hono.js';
import type { RunningPayments } from '../../docs/examples/payments-shared.js';
import { problemTypePrefix } from '../../src/http/problem.js';

const examples = { fastify: startFastify, express: startExpress, hono: startHono };
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

async function call(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
) {
  const response = await fetch(new URL(path, base), {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {}
  return { status: response.status, headers: response.headers, text, json } satisfies Answer;
}

function expectProblem(answer: Answer, status: number): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.json.status).toBe(status);
}

for (const [framework, start] of Object.entries(examples)) {
  describe(`docs/examples/payments-${framework}.ts`, () => {
    let running: RunningPayments;
    let base: string;
    beforeEach(async () => {
      running = await start(0, ':memory:');
      base = running.url;
    });
    afterEach(() => running.close());

    const pay = (account: string | undefined, key: string | undefined, body: unknown) =>
      call(
        base,
        'POST',
        '/payments',
        {
          ...(account === undefined ? {} : { 'x-account-id': account }),
          ...(key === undefined ? {} : { 'idempotency-key': key }),
        },
        body,
      );

    it('creates a payment once: 201 with Location, replayed byte for byte for the same key and body', async () => {
      const first = await pay('acct-1', 'pay-1', { cents: 500 });
      expect(first.status).toBe(201);
      const id = first.json.id as string;
      expect(first.json).toEqual({ id, cents: 500 });
      expect(first.headers.get('location')).toBe(`/payments/${id}`);
      const retry = await pay('acct-1', 'pay-1', { cents: 500 });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.text).toBe(first.text);
      expect(retry.headers.get('location')).toBe(first.headers.get('location'));
      const list = await call(base, 'GET', '/payments', { 'x-account-id': 'acct-1' });
      expect(list.json).toEqual({ items: [{ id, cents: 500 }] });
    });

    it('answers 422 for the same key with another body, and executes anew under another account', async () => {
      const first = await pay('acct-1', 'pay-2', { cents: 100 });
      expectProblem(await pay('acct-1', 'pay-2', { cents: 101 }), 422);
      const other = await pay('acct-2', 'pay-2', { cents: 100 });
      expect(other.status).toBe(201);
      expect(other.headers.get('idempotent-replayed')).toBeNull();
      expect(other.json.id).not.toBe(first.json.id);
      const listed = await call(base, 'GET', '/payments', { 'x-account-id': 'acct-1' });
      expect(listed.json).toEqual({ items: [first.json] });
    });

    it('refuses a missing account and a missing or malformed key with 400, never under a shared scope', async () => {
      const noAccount = await pay(undefined, 'pay-3', { cents: 100 });
      expectProblem(noAccount, 400);
      expectProblem(await pay('acct-1', undefined, { cents: 100 }), 400);
      expectProblem(await pay('acct-1', 'bad,key', { cents: 100 }), 400);
      expectProblem(await call(base, 'GET', '/payments', {}), 400);
      // Nothing was created under an "undefined" account either.
      expect((await pay('undefined', 'pay-3', { cents: 100 })).headers.get('idempotent-replayed')).toBeNull();
    });

    it('answers 422 with errors for cents that are not an integer ≥ 1', async () => {
      for (const body of [{ cents: 0 }, { cents: 1.5 }, { cents: '5' }, {}, [1]]) {
        const answer = await pay('acct-1', `bad-${JSON.stringify(body)}`, body);
        expectProblem(answer, 422);
        expect(answer.json.type).toBe(`${problemTypePrefix}validation`);
        expect(Array.isArray(answer.json.errors) && answer.json.errors.length > 0).toBe(true);
      }
      expect((await call(base, 'GET', '/payments', { 'x-account-id': 'acct-1' })).json).toEqual({
        items: [],
      });
    });

    it('shows a payment to its own account only', async () => {
      const created = await pay('acct-1', 'pay-4', { cents: 250 });
      const location = created.headers.get('location')!;
      const own = await call(base, 'GET', location, { 'x-account-id': 'acct-1' });
      expect(own.status).toBe(200);
      expect(own.json).toEqual(created.json);
      expectProblem(await call(base, 'GET', location, { 'x-account-id': 'acct-2' }), 404);
      expectProblem(await call(base, 'GET', '/payments/no-such-id', { 'x-account-id': 'acct-1' }), 404);
      expect((await call(base, 'GET', '/payments', { 'x-account-id': 'acct-2' })).json).toEqual({
        items: [],
      });
    });

    it('answers problem+json for unknown paths, other methods (405 + Allow) and bodies that are not JSON', async () => {
      expectProblem(await call(base, 'GET', '/nowhere', {}), 404);
      const wrongMethod = await call(base, 'DELETE', '/payments', { 'x-account-id': 'acct-1' });
      expectProblem(wrongMethod, 405);
      expect(wrongMethod.headers.get('allow')).toContain('POST');
      expectProblem(await pay('acct-1', 'pay-5', '{"cents": '), 400);
    });
  });
}

/** A port nobody listens on right now, for the runner (which takes a fixed port). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('npm run example -- <framework> --port <N>', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill();
  });

  for (const framework of Object.keys(examples)) {
    it(`starts the ${framework} example and prints exactly where it listens`, async () => {
      const port = await freePort();
      // What the `example` script runs: the TypeScript sources, with no build.
      const child = spawn(
        process.execPath,
        [
          '--conditions=retrysafe-source',
          '--import',
          './test/helpers/register-ts.mjs',
          'docs/examples/run-example.ts',
          framework,
          '--port',
          String(port),
        ],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      let output = '';
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        output += chunk;
      });
      let errors = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        errors += chunk.toString();
      });
      while (!output.includes('\n')) {
        if (child.exitCode !== null) throw new Error(`the example exited: ${errors}`);
        await new Promise((resolve) => child.stdout!.once('data', resolve).once('close', resolve));
      }
      expect(output).toBe(`listening on http://127.0.0.1:${port}\n`);
      const answer = await call(
        `http://127.0.0.1:${port}`,
        'POST',
        '/payments',
        { 'x-account-id': 'acct-1', 'idempotency-key': 'runner-1' },
        { cents: 42 },
      );
      expect(answer.status).toBe(201);
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    });
  }
});
