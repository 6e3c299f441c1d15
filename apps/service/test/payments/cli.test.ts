// `retrysafe payments-sim` as a real child process (the built CLI: run `npm run build` first):
// it serves, is killed with SIGKILL, restarts on the same SQLite file and replays a key it
// charged before the kill; SIGTERM closes it with status 0; bad flags exit 2 before serving.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isProblem, send } from './http.js';

const binPath = new URL('../../bin/retrysafe.js', import.meta.url).pathname;
const startTimeoutMs = 30_000;

interface SimProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): SimProcess & { listening: Promise<string>; stderr: () => string } {
  const child = spawn(process.execPath, [binPath, 'payments-sim', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`payments-sim did not listen: ${stderr}`)),
      startTimeoutMs,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /payments-sim listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`payments-sim exited (${signal ?? code}) before listening: ${stderr}`));
    });
  });
  return { child, url: '', exited, listening, stderr: () => stderr };
}

async function startSim(db: string): Promise<SimProcess> {
  const sim = run(['--port', '0', '--host', '127.0.0.1', '--db', db]);
  return { ...sim, url: await sim.listening };
}

describe('retrysafe payments-sim', () => {
  it('replays a key charged before a SIGKILL after a restart on the same file, and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payments-sim-cli-'));
    dirs.push(dir);
    const db = join(dir, 'payments.db');
    const key = `${randomUUID()}:charge`;
    const body = { amount: 12_345, currency: 'GBP', reference: `order-${randomUUID()}` };

    const first = await startSim(db);
    const charged = await send(first.url, '/charges', { body, key });
    expect(charged.status).toBe(201);
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const second = await startSim(db);
    const replay = await send(second.url, '/charges', { body, key });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.id).toBe(charged.json.id);
    expect((await send(second.url, '/stats')).json).toEqual({
      charges: 1,
      refunds: 0,
      chargedAmount: 12_345,
      refundedAmount: 0,
    });
    // Started without fault flags: no fault switch to find.
    expect(isProblem(await send(second.url, '/_faults', { body: { failRate: 1 } }), 404)).toBe(true);

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });

  it('turns faults on from its flags', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payments-sim-cli-'));
    dirs.push(dir);
    const sim = run(['--db', join(dir, 'payments.db'), '--fail-rate', '1', '--seed', '7']);
    const url = await sim.listening;
    const refused = await send(url, '/charges', {
      body: { amount: 1, currency: 'EUR', reference: 'r' },
      key: randomUUID(),
    });
    expect(isProblem(refused, 503)).toBe(true);
    expect((await send(url, '/_faults')).json).toMatchObject({
      failRate: 1,
      seed: 7,
      injected: { failed: 1 },
    });
    expect((await send(url, '/stats')).json.charges).toBe(0);
    sim.child.kill('SIGINT');
    expect((await sim.exited).code).toBe(0);
  });

  it('exits 2 with a message for a bad flag, before serving', async () => {
    for (const args of [['--fail-rate', '2'], ['--port', 'x'], ['--unknown']]) {
      const sim = run(args);
      sim.listening.catch(() => {});
      expect((await sim.exited).code).toBe(2);
      expect(sim.stderr()).toMatch(/^retrysafe payments-sim: /);
    }
  });
});
