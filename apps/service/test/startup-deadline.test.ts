// Regression (issue 10): under database faults about one start in twenty hung — no port, no
// message — until `retrysafe chaos` killed it. Start-up is now bounded as a whole
// (STARTUP_TIMEOUT_MS): a real service process pointed at a PostgreSQL that accepts connections
// but never answers (a stalled loopback proxy in front of the real server) exits 1 and says
// which step it was stuck in, instead of hanging.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

const binPath = new URL('../bin/retrysafe.js', import.meta.url).pathname;
let database: TestDatabase;
let proxy: TcpProxy;

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_startup');
  proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
});
afterAll(async () => {
  await proxy?.close();
  await database?.drop();
});

describe('service start-up against a stalled database', () => {
  it('exits 1 within STARTUP_TIMEOUT_MS and names the step it was stuck in, rather than hanging', async () => {
    proxy.stall();
    const child = spawn(
      process.execPath,
      [binPath, 'serve', '--port', '0', '--host', '127.0.0.1', '--db', proxy.through(database.url)],
      {
        env: {
          ...process.env,
          // Every bound of its own longer than the start-up's, so only the deadline can end it.
          PG_CONNECT_TIMEOUT_MS: '60000',
          PG_QUERY_TIMEOUT_MS: '60000',
          PG_STATEMENT_TIMEOUT_MS: '50000',
          STARTUP_TIMEOUT_MS: '1500',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) =>
      child.once('exit', (exitCode) => resolve(exitCode)),
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/start-up did not finish within 1500 ms .*stuck while opening the database/);
    expect(stdout).not.toMatch(/listening on/);
  }, 30_000);
});
