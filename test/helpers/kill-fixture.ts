// Crash tests' shared step: run a TypeScript fixture as a real child process (sources through
// the retrysafe-source condition), wait until it prints `marker` on stdout, then SIGKILL it.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const registerTs = fileURLToPath(new URL('./register-ts.mjs', import.meta.url));

/** Rejects (after killing it) if the fixture exits first or stays silent past `timeoutMs`. */
export async function runFixtureUntilThenKill(
  fixture: string,
  args: string[],
  marker: string,
  timeoutMs = 20_000,
): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--conditions=retrysafe-source', '--import', registerTs, fixture, ...args],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the worker never printed ${marker}: ${output}`)),
        timeoutMs,
      );
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(marker)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the worker exited (${code ?? signal}) before ${marker}: ${output}`));
      });
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}
