// The service processes a chaos run puts behind its proxy: starts them, kills one with SIGKILL
// at random moments and starts it again on the same database, and stops them all at the end.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Backend } from './proxy.js';

const binPath = new URL('../../bin/retrysafe.js', import.meta.url).pathname;

export interface FleetOptions {
  processes: number;
  /** `--db` for every process: a SQLite path or a `postgres://` URL. */
  database: string;
  /** Extra environment for every process (lease, Redis, fault rate). */
  env: Record<string, string>;
  /** Where each process's stderr goes, for diagnosing a run. */
  onStderr?: (line: string) => void;
}

interface Member {
  child: ChildProcess;
  backend: Backend | undefined;
  exited: Promise<void>;
}

export class Fleet {
  readonly #options: FleetOptions;
  readonly #members: Array<Member | undefined>;
  #stopping = false;
  kills = 0;
  restarts = 0;

  constructor(options: FleetOptions) {
    this.#options = options;
    this.#members = new Array(options.processes).fill(undefined);
  }

  /** Starts the processes one after another, so the first one migrates and seeds alone. */
  async start(): Promise<void> {
    for (let slot = 0; slot < this.#members.length; slot++) await this.#startSlot(slot);
  }

  /** The processes that are listening now. */
  backends(): Backend[] {
    const live: Backend[] = [];
    for (const member of this.#members) if (member?.backend) live.push(member.backend);
    return live;
  }

  /**
   * SIGKILLs one live process chosen at random, then starts a new one in its slot. The last
   * live process is spared (with one process, it waits for its restart): otherwise kills
   * outpace restarts and the run measures an empty proxy instead of the service.
   */
  async killOneAndRestart(random: () => number, restartDelayMs: number): Promise<void> {
    const slots = this.#members.flatMap((member, slot) => (member?.backend ? [slot] : []));
    const starting = this.#members.length - slots.length;
    if (slots.length === 0 || (slots.length === 1 && starting > 0)) return;
    const slot = slots[Math.floor(random() * slots.length)]!;
    const member = this.#members[slot]!;
    member.backend = undefined; // the proxy stops sending new connections at once
    member.child.kill('SIGKILL');
    this.kills++;
    await member.exited;
    await new Promise((resolve) => setTimeout(resolve, restartDelayMs));
    if (this.#stopping) return;
    try {
      await this.#startSlot(slot);
      this.restarts++;
    } catch (error) {
      if (!this.#stopping) throw error; // stopped while it started: nothing to restart
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#members.map(async (member) => {
        if (!member) return;
        member.backend = undefined;
        if (member.child.exitCode === null && member.child.signalCode === null) member.child.kill('SIGTERM');
        await member.exited;
      }),
    );
  }

  async #startSlot(slot: number): Promise<void> {
    const child = spawn(
      process.execPath,
      [binPath, 'serve', '--port', '0', '--host', '127.0.0.1', '--db', this.#options.database],
      {
        env: { ...process.env, LOG_LEVEL: 'warn', ...this.#options.env, RETRYSAFE_TEST_HOOKS: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const member: Member = { child, backend: undefined, exited };
    this.#members[slot] = member;
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stderr += text;
      for (const line of text.split('\n')) if (line.trim() !== '') this.#options.onStderr?.(line);
    });
    member.backend = await new Promise<Backend>((resolve, reject) => {
      let buffered = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(buffered);
        if (match) {
          buffered = '';
          resolve({ host: '127.0.0.1', port: Number(match[1]) });
        } else if (buffered.length > 65_536) {
          buffered = buffered.slice(-1024);
        }
      });
      child.once('exit', (code, signal) =>
        reject(new Error(`service process exited (${signal ?? code}) before listening: ${stderr.trim()}`)),
      );
    });
  }
}
