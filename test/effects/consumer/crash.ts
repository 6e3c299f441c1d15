// Starts `crash-after-commit.ts` in a child process and waits for it to die by its own SIGKILL.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export async function runConsumerThatCrashesAfterCommit(settings: Record<string, unknown>): Promise<{
  signal: NodeJS.Signals | null;
  stderr: string;
}> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=retrysafe-source',
      '--import',
      './test/helpers/register-ts.mjs',
      'test/effects/consumer/crash-after-commit.ts',
      JSON.stringify(settings),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // Bounded: a child that never receives its event is killed after 30 s and the test fails on its signal.
  const guard = setTimeout(() => child.kill('SIGTERM'), 30_000);
  const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(guard);
  return { signal, stderr };
}
