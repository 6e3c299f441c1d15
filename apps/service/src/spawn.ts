// Starts the reference service as a child process (`retrysafe serve`) on a free loopback port
// and resolves once it listens: for `retrysafe chaos` and for the end-to-end tests.
import { type ChildProcess, spawn } from 'node:child_process';

const binPath = new URL('../bin/retrysafe.js', import.meta.url).pathname;
/** Long enough for a cold start on a loaded 2-core machine, short enough to report a hang. */
export const defaultStartTimeoutMs = 30_000;
/** How much of a child's stderr is kept to explain a failed start. */
const stderrTailChars = 4_096;

export interface SpawnServiceOptions {
  /** `--db`: a SQLite path or a `postgres://` URL. */
  db: string;
  /** Added to this process's environment. */
  env: Record<string, string>;
  /** Every stdout line (the banner, then JSON log lines). */
  onLine?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface SpawnedService {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** Resolves when the process has exited, however it ended. */
  exited: Promise<void>;
}

export async function spawnService(options: SpawnServiceOptions): Promise<SpawnedService> {
  const child = spawn(
    process.execPath,
    [binPath, 'serve', '--port', '0', '--host', '127.0.0.1', '--db', options.db],
    { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderrTail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-stderrTailChars);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let listening = false;
    let partial = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `service process did not listen within ${options.startTimeoutMs ?? defaultStartTimeoutMs} ms`,
        ),
      );
    }, options.startTimeoutMs ?? defaultStartTimeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        options.onLine?.(line);
        const match = listening ? null : /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (match) {
          listening = true;
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`service process exited (${signal ?? code}) before listening: ${stderrTail.trim()}`));
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, port, exited };
}
