// End-to-end: `retrysafe serve` with an impossible setting exits non-zero with a message that
// names it, instead of starting and answering 503 to every keyed write forever.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const binPath = new URL('../bin/retrysafe.js', import.meta.url).pathname;

function serve(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', '--db', ':memory:'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    // A process that started listening instead of refusing is stopped, and the test fails on its code.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

describe('impossible settings', () => {
  it('refuses IDEMPOTENCY_RETENTION_MS=1e19 at start: non-zero exit, the message on stderr, never listening', async () => {
    const { code, stderr, stdout } = await serve({ IDEMPOTENCY_RETENTION_MS: '1e19' });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stderr).toContain('IDEMPOTENCY_RETENTION_MS=1e19');
    expect(stdout).not.toContain('listening');
  }, 30_000);

  it('refuses a lease longer than the retention at start', async () => {
    const { code, stderr } = await serve({ IDEMPOTENCY_LEASE_MS: '5000', IDEMPOTENCY_RETENTION_MS: '1000' });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stderr).toContain('IDEMPOTENCY_LEASE_MS (5000) is longer than IDEMPOTENCY_RETENTION_MS (1000)');
  }, 30_000);
});
