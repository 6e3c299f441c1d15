// The service processes a chaos run puts behind its proxy: starts them, kills one with SIGKILL
// at random moments and starts it again on the same database, notices any that die on their
// own, and stops them all at the end.
import { type SpawnedService, spawnService } from '../spawn.js';
import type { Backend } from './proxy.js';

/** After SIGTERM, how long a process may take to close before it gets SIGKILL. */
const stopGraceMs = 5_000;
/**
 * A restart that fails (the database was cut or stalled while the process started: it exits
 * with a message, as it should) is tried again, this far apart, for at most this long.
 */
const startRetryForMs = 60_000;
const startRetryDelayMs = 250;
/** A start that has not listened (and printed its banner) by then is killed and tried again. */
const startTimeoutMs = 15_000;

export interface FleetOptions {
  processes: number;
  /** `--db` for every process: a SQLite path or a `postgres://` URL. */
  database: string;
  /** Extra environment for every process (lease, Redis, fault rate). */
  env: Record<string, string>;
}

interface Member {
  service: SpawnedService;
  /** Set while the proxy may send it connections. */
  live: boolean;
  /** Set when the fleet itself ended it (a kill or the final stop). */
  endedByFleet: boolean;
}

export class Fleet {
  readonly #options: FleetOptions;
  readonly #members: Array<Member | undefined>;
  #stopping = false;
  kills = 0;
  restarts = 0;
  /** Restarts that failed and were tried again (a database fault during the start). */
  failedStarts = 0;
  /** Of those, starts that hung (no banner within `startTimeoutMs`) rather than exiting. */
  startTimeouts = 0;
  /** Processes that exited without being killed: a crash the run must report. */
  readonly unexpectedExits: string[] = [];

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
    for (const member of this.#members) {
      if (member?.live) live.push({ host: '127.0.0.1', port: member.service.port });
    }
    return live;
  }

  /**
   * SIGKILLs one live process chosen at random, then starts a new one in its slot. The last
   * live process is spared (with one process, it waits for its restart): otherwise kills
   * outpace restarts and the run measures an empty proxy instead of the service.
   */
  async killOneAndRestart(random: () => number, restartDelayMs: number): Promise<void> {
    const slots = this.#members.flatMap((member, slot) => (member?.live ? [slot] : []));
    const starting = this.#members.length - slots.length;
    if (slots.length === 0 || (slots.length === 1 && starting > 0)) return;
    const slot = slots[Math.floor(random() * slots.length)]!;
    const member = this.#members[slot]!;
    member.live = false; // the proxy stops sending new connections at once
    member.endedByFleet = true;
    member.service.child.kill('SIGKILL');
    this.kills++;
    await member.service.exited;
    await new Promise((resolve) => setTimeout(resolve, restartDelayMs));
    const giveUpAtMs = Date.now() + startRetryForMs;
    while (!this.#stopping) {
      try {
        await this.#startSlot(slot);
        this.restarts++;
        return;
      } catch (error) {
        if (this.#stopping) return; // stopped while it started: nothing to restart
        if (Date.now() >= giveUpAtMs) throw error;
        this.failedStarts++;
        if (/did not listen within/.test(String(error))) this.startTimeouts++;
        await new Promise((resolve) => setTimeout(resolve, startRetryDelayMs));
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#members.map(async (member) => {
        if (!member) return;
        member.live = false;
        member.endedByFleet = true;
        const { child, exited } = member.service;
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const grace = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
        await exited;
        clearTimeout(grace);
      }),
    );
  }

  async #startSlot(slot: number): Promise<void> {
    const service = await spawnService({
      db: this.#options.database,
      startTimeoutMs,
      // A start-up stuck on a faulty database exits (naming its step) before the fleet's own
      // timeout, so it counts as a failed start with a reason, and is tried again.
      env: {
        LOG_LEVEL: 'warn',
        STARTUP_TIMEOUT_MS: String(startTimeoutMs - 5_000),
        ...this.#options.env,
        RETRYSAFE_TEST_HOOKS: '1',
      },
    });
    const member: Member = { service, live: !this.#stopping, endedByFleet: false };
    this.#members[slot] = member;
    service.child.once('exit', (code, signal) => {
      member.live = false;
      if (!member.endedByFleet) this.unexpectedExits.push(`slot ${slot} exited (${signal ?? code})`);
    });
    if (this.#stopping) await this.stop();
  }
}
