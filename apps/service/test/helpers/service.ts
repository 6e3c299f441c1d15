// Starts the reference service as a real child process (`node bin/retrysafe.js serve`) on a
// free loopback port with its own temporary SQLite file. Needs `npm run build` first.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnService } from '../../src/spawn.js';

export interface StartServiceOptions {
  /** Extra environment; RETRYSAFE_TEST_HOOKS=1 is always set. */
  env?: Record<string, string>;
  /** Reuse a database file (to restart "the same" service); default: a fresh temp file. */
  dbPath?: string;
  /** A `postgres://…` URL instead of a SQLite file. */
  databaseUrl?: string;
}

export interface StartedService {
  url: string;
  dbPath: string;
  process: ChildProcess;
  /** Every stdout line so far (JSON log lines and the banner). */
  logs: string[];
  /** Parsed JSON log lines. */
  logRecords(): Record<string, unknown>[];
  /** SIGTERM and wait for exit; removes the temp directory unless the db was given. */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the process to exit; keeps the db. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startService(options: StartServiceOptions = {}): Promise<StartedService> {
  const ownDir =
    options.dbPath === undefined && options.databaseUrl === undefined
      ? mkdtempSync(join(tmpdir(), 'retrysafe-test-'))
      : undefined;
  const dbPath = options.databaseUrl ?? options.dbPath ?? join(ownDir!, 'service.db');
  const logs: string[] = [];
  const { child, url, exited } = await spawnService({
    db: dbPath,
    env: { LOG_LEVEL: 'info', ...options.env, RETRYSAFE_TEST_HOOKS: '1' },
    onLine: (line) => logs.push(line),
  });
  const cleanup = () => {
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  };
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    url,
    dbPath,
    process: child,
    logs,
    logRecords: () =>
      logs.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>),
    async stop() {
      if (running()) child.kill('SIGTERM');
      await exited;
      cleanup();
    },
    async kill(signal = 'SIGKILL') {
      if (running()) child.kill(signal);
      await exited;
    },
  };
}

/** Parsed JSON of a test response: tests index into it freely and assert on what they read. */
// biome-ignore lint/suspicious/noExplicitAny: test-only convenience; every value read is asserted on.
type Json = any;

/** fetch with a demo key; JSON bodies are serialised for you. */
export function api(baseUrl: string, token = 'demo-writer-a') {
  return async (
    path: string,
    init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...init.headers };
    let body: string | undefined;
    if (init.body !== undefined) {
      body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(new URL(path, baseUrl), {
      method: init.method ?? 'GET',
      headers,
      body: body ?? null,
      redirect: 'manual',
    });
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    const json =
      type.includes('json') && text !== '' ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    return { status: response.status, headers: response.headers, text, json: json as Json };
  };
}
