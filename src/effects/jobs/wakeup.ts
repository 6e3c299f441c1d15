// The runner's one sleep: until a wake-up (an enqueue was committed, a slot freed, stop) or a
// timeout, whichever comes first. A wake-up that arrives while the runner is busy is kept, so
// the next sleep returns at once instead of missing it.
// From node:timers, so tests that fake the global timers cannot stall the runner.
import { clearTimeout, setTimeout } from 'node:timers';

export class Wakeup {
  #pending = false;
  #wake: (() => void) | undefined;

  notify(): void {
    this.#pending = true;
    this.#wake?.();
  }

  /** Resolves at the next `notify` (at once if one came since the last sleep), or after `ms`. */
  sleep(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        this.#pending = false;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#wake = done;
    });
  }
}
