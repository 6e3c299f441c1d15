// A redis-server of the chaos run's own, on a free loopback port with an append-only file in a
// temporary directory, so the run can restart it (SIGTERM, then start again on the same port
// and directory) without touching anybody else's Redis.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A start that takes longer than this is reported as a failure. */
const startTimeoutMs = 10_000;
/** After SIGTERM (Redis fsyncs its AOF and exits), how long before SIGKILL. */
const stopGraceMs = 10_000;
/** The server is down this long between its exit and its next start. */
const downMs = 200;

export interface OwnRedisServer {
  url: string;
  port: number;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no free port for redis-server');
  return address.port;
}

function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise<ChildProcess>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} did not get ready: ${output.slice(-500)}`));
    }, startTimeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not start redis-server (is it installed?): ${error.message}`));
    });
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited (${code}): ${output.slice(-500)}`));
    };
    child.once('exit', onExit);
    let ready = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4_000);
      if (!ready && output.includes('Ready to accept connections')) {
        ready = true;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(child);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4_000);
    });
  });
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const grace = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
  await exited;
  clearTimeout(grace);
}

export async function startOwnRedis(dir: string): Promise<OwnRedisServer> {
  const port = await freePort();
  let child = await startRedis(port, dir);
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart() {
      if (stopped) return;
      await stopRedis(child);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      if (stopped) return;
      child = await startRedis(port, dir);
      if (stopped) await stopRedis(child); // stopped while it started
    },
    async stop() {
      stopped = true;
      await stopRedis(child);
    },
  };
}
