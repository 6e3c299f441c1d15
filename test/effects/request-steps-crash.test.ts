// A real crash between two steps: a service process (Fastify + the SQLite store) is SIGKILLed
// right after its first step committed; a new process on the same file gets the client's retry
// with the same key and resumes at the second step: the order is not placed again, the charge
// is made once with the record's derived key, and the checkout finishes.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChargeProvider, startChargeProvider } from './fixtures/steps-provider.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const leaseMs = 300;
/** How often the retry may meet the dead process's lease (409) before the test gives up. */
const maxInUseRetries = 100;

let dir: string;
let provider: ChargeProvider;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'retrysafe-steps-crash-'));
  provider = await startChargeProvider();
});

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Service {
  child: ChildProcess;
  url: string;
  /** Resolves when the process printed `line`. */
  printed(line: string): Promise<void>;
}

async function startService(databasePath: string): Promise<Service> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=retrysafe-source',
      '--import',
      './test/helpers/register-ts.mjs',
      'test/effects/fixtures/steps-server.ts',
    ],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        STEPS_DB: databasePath,
        STEPS_PROVIDER_URL: provider.url,
        STEPS_LEASE_MS: String(leaseMs),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const lines: string[] = [];
  const waiters: { matches: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const waiter of waiters.filter((w) => w.matches(line))) waiter.resolve(line);
  });
  const printedLine = (matches: (line: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find(matches);
      if (seen !== undefined) return resolve(seen);
      waiters.push({ matches, resolve });
      child.once('exit', (code, signal) => reject(new Error(`service exited (${code ?? signal}) early`)));
    });
  const printed = async (line: string) => void (await printedLine((seen) => seen === line));
  const listening = (await printedLine((line) => line.startsWith('listening '))).slice('listening '.length);
  return { child, url: `http://127.0.0.1:${listening}`, printed };
}

function postCheckout(url: string, key: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/checkouts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key, ...headers },
    body: JSON.stringify({ cents: 700 }),
  });
}

function count(databasePath: string, table: string): number {
  const db = new Database(databasePath, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function recordIds(databasePath: string): string[] {
  const db = new Database(databasePath, { readonly: true });
  try {
    return (db.prepare('SELECT record_id FROM retrysafe_idempotency').all() as { record_id: string }[]).map(
      (row) => row.record_id,
    );
  } finally {
    db.close();
  }
}

describe('a service killed between two steps', () => {
  it('resumes at step 2 in a new process on the same SQLite file: step 1 ran once, the charge is keyed <recordId>:charge', async () => {
    const databasePath = join(dir, 'checkout.db');
    const key = 'crash-between-steps-1';

    const first = await startService(databasePath);
    // The answer never comes: the process dies with the request open.
    const lost = postCheckout(first.url, key, { 'x-hold-after-order': '1' }).catch((error: unknown) => error);
    await first.printed('held');
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    expect(await lost).toBeInstanceOf(Error);
    expect(count(databasePath, 'orders')).toBe(1);
    expect(provider.keys).toEqual([]);

    const second = await startService(databasePath);
    // The dead process's claim holds the key until its lease ends: 409 until then.
    let answer = await postCheckout(second.url, key);
    for (let retries = 0; answer.status === 409 && retries < maxInUseRetries; retries++) {
      await answer.arrayBuffer();
      await sleep(leaseMs / 5);
      answer = await postCheckout(second.url, key);
    }
    expect(answer.status).toBe(201);
    const body = (await answer.json()) as { orderId: string; chargeId: string };

    expect(count(databasePath, 'orders')).toBe(1);
    expect(count(databasePath, 'payments')).toBe(1);
    const [recordId] = recordIds(databasePath);
    expect(provider.keys).toEqual([`${recordId}:charge`]);
    expect(provider.charges.get(`${recordId}:charge`)?.chargeId).toBe(body.chargeId);

    // And the next retry replays, in this process, without running anything.
    const replay = await postCheckout(second.url, key);
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await replay.json()).toEqual(body);
    expect(provider.keys).toHaveLength(1);
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
  });
});
