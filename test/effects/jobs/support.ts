// Small tools the job tests share: a gate a handler waits on, a clock the test moves by hand,
// and a recorder of the runner's events that can wait for one (bounded).
import type { JobEvent } from '../../../src/effects/jobs/index.js';

export interface Gate<T = void> {
  promise: Promise<T>;
  open(value: T): void;
}

export function gate<T = void>(): Gate<T> {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A clock that only moves when told to. Starts near the real time so ids and ages look sane. */
export class ManualClock {
  ms: number;
  constructor(ms = Math.floor(Date.now() / 1000) * 1000) {
    this.ms = ms;
  }
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Records a runner's events; `next` waits for the first (past or future) that matches. */
export class EventRecorder {
  readonly events: JobEvent[] = [];
  readonly #waiters: { match: (event: JobEvent) => boolean; resolve: (event: JobEvent) => void }[] = [];

  readonly onEvent = (event: JobEvent): void => {
    this.events.push(event);
    for (const waiter of [...this.#waiters]) {
      if (!waiter.match(event)) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  };

  next(match: (event: JobEvent) => boolean, what: string, timeoutMs = 20_000): Promise<JobEvent> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const types = this.events.map((event) => event.type).join(', ');
        reject(new Error(`no ${what} event within ${timeoutMs} ms; events so far: ${types}`));
      }, timeoutMs);
      this.#waiters.push({
        match,
        resolve: (event) => {
          clearTimeout(timer);
          resolve(event);
        },
      });
    });
  }

  /** Events of `type` about job `id`, in order. */
  about(id: string, type?: JobEvent['type']): JobEvent[] {
    return this.events.filter(
      (event) => 'job' in event && event.job?.id === id && (type === undefined || event.type === type),
    );
  }

  completed(id: string): Promise<JobEvent> {
    return this.next((event) => event.type === 'completed' && event.job.id === id, `completed(${id})`);
  }
}
