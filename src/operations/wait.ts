// `waitFor` for both dialects (PROTOCOL rule 32, `Prefer: wait`): re-read the row when this process
// changed it (an in-process wake-up) or every `pollMs` (another process's change), until it is
// terminal, the timeout passes or the caller aborts. Bounded by the store's `maxWaitMs`.
// From node:timers, so tests that fake the global timers cannot stall a wait.
import { clearTimeout, setTimeout } from 'node:timers';
import { isTerminal } from './status.js';
import type { Operation } from './types.js';

type Listener = () => void;

/** Wake-ups for waiters on one table of one database, heard by every store object on it. */
export class OperationWakeups {
  readonly #listeners = new Map<string, Set<Listener>>();

  notify(id: string): void {
    for (const listener of [...(this.#listeners.get(id) ?? [])]) listener();
  }

  listen(id: string, listener: Listener): () => void {
    let listeners = this.#listeners.get(id);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(id, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(id) === listeners) this.#listeners.delete(id);
    };
  }
}

const registry = new WeakMap<object, Map<string, OperationWakeups>>();

/** The wake-ups of `table` on `database` (a SQLite connection, a pg pool). */
export function wakeupsOf(database: object, table: string): OperationWakeups {
  let tables = registry.get(database);
  if (tables === undefined) {
    tables = new Map();
    registry.set(database, tables);
  }
  let wakeups = tables.get(table);
  if (wakeups === undefined) {
    wakeups = new OperationWakeups();
    tables.set(table, wakeups);
  }
  return wakeups;
}

export interface WaitLoopOptions {
  id: string;
  /** Reads the operation as committed (undefined: absent or another scope's). */
  read: () => Promise<Operation | undefined>;
  wakeups: OperationWakeups;
  timeoutMs: number;
  maxWaitMs: number;
  pollMs: number;
  signal?: AbortSignal | undefined;
}

export async function waitUntilTerminal(options: WaitLoopOptions): Promise<Operation | undefined> {
  const { timeoutMs, signal } = options;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0)
    throw new TypeError(`timeoutMs must be a number of milliseconds ≥ 0, got ${timeoutMs}`);
  let woken = false;
  let timedOut = false;
  let wake: (() => void) | undefined;
  // Listening before the first read: a change between that read and the sleep is not missed.
  const unlisten = options.wakeups.listen(options.id, () => {
    woken = true;
    wake?.();
  });
  const timer = setTimeout(
    () => {
      timedOut = true;
      wake?.();
    },
    Math.min(timeoutMs, options.maxWaitMs),
  );
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      woken = false;
      const operation = await options.read();
      if (operation === undefined || isTerminal(operation.status) || timedOut || signal?.aborted)
        return operation;
      if (woken) continue;
      await new Promise<void>((resolve) => {
        const poll = setTimeout(done, options.pollMs);
        function done() {
          clearTimeout(poll);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    clearTimeout(timer);
    unlisten();
    signal?.removeEventListener('abort', onAbort);
  }
}
