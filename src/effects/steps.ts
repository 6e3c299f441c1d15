// Named steps with checkpoints: the one mechanism a request (its idempotency record) and a job
// (its row) both use to resume work after a failure instead of repeating it. A finished step's
// result is saved in the owner's data part, under `steps.<name>`; a later run with the same
// owner returns the saved result without running the step again.
import type { RecordData } from '../idempotency/store.js';

/** Where one owner's checkpoints live: an idempotency record, or a job row. */
export interface Checkpoints<Tx> {
  /** The owner's data part as the current run found it (what earlier runs checkpointed). */
  readonly data: RecordData;
  /** Derived keys are `<keyPrefix>:<step name>`: the record id, or `job:<id>`. */
  readonly keyPrefix: string;
  /**
   * True when `save(data, tx)` commits inside `tx` (records or jobs in the same database as the
   * business rows): a step's writes and its checkpoint then commit or roll back together.
   * False: the checkpoint follows the commit, so a crash in between re-runs that step once.
   */
  readonly sharesTransaction: boolean;
  /**
   * Fenced: replaces the owner's data part while this run still holds it (its lease or claim).
   * Returns false when another run took it over; with `tx`, inside that transaction.
   */
  save(data: RecordData, tx?: Tx): Promise<boolean>;
  /** Runs `work` in one transaction of the database the step's writes go to. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** The error to throw when `save` answers false (the run lost its claim or lease). */
  lost(writes: 'rolled-back' | 'may-be-kept'): Error;
}

/** What `call` hands the external call: the key to send as its Idempotency-Key. */
export interface StepCall {
  /** `<keyPrefix>:<name>`: the same on every retry, takeover and restart. */
  key: string;
  name: string;
}

/** The saved form of one finished step. `result` is absent when the step returned undefined. */
interface SavedStep {
  result?: unknown;
  finishedAtMs: number;
}

export class StepNameRepeatedError extends Error {
  override name = 'StepNameRepeatedError';
  constructor(step: string) {
    super(`step "${step}" already ran in this execution: give each step its own name`);
  }
}

export class CallInsideStepError extends Error {
  override name = 'CallInsideStepError';
  constructor(call: string, step: string) {
    super(
      `call("${call}") inside step("${step}"): a transaction is never held open across a network call; make the call between steps`,
    );
  }
}

const stepNamePattern = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

/**
 * Runs the steps of one execution. Steps and checkpoints are serialised (one at a time), so
 * each checkpoint writes the data part with every earlier step in it; the external work of
 * concurrent `call`s still overlaps.
 */
export class StepRunner<Tx> {
  readonly #checkpoints: Checkpoints<Tx>;
  #data: RecordData;
  readonly #names = new Set<string>();
  #turn: Promise<void> = Promise.resolve();
  #openStep: string | undefined;
  readonly #now: () => number;

  constructor(checkpoints: Checkpoints<Tx>, now: () => number = Date.now) {
    this.#checkpoints = checkpoints;
    this.#data = checkpoints.data;
    this.#now = now;
  }

  /** The data part including every checkpoint this runner saved. */
  get data(): RecordData {
    return this.#data;
  }

  /** Whether an earlier run (or this one) finished `name`. */
  finished(name: string): boolean {
    return Object.hasOwn(this.#saved(), name);
  }

  /** The derived key of step `name` (also what `call` hands its work). */
  keyFor(name: string): string {
    return `${this.#checkpoints.keyPrefix}:${name}`;
  }

  /**
   * Runs `work` in one transaction with its checkpoint (fenced), unless an earlier run
   * finished `name`: then returns that run's result. The result must be JSON; what is returned
   * is the saved form (a Date comes back as its string), the same on the first run as later.
   */
  async step<T>(name: string, work: (tx: Tx) => T | Promise<T>): Promise<T> {
    this.#claimName(name);
    return this.#exclusive(async () => {
      const saved = this.#saved()[name];
      if (saved !== undefined) return saved.result as T;
      const checkpoints = this.#checkpoints;
      this.#openStep = name;
      try {
        if (checkpoints.sharesTransaction) {
          let saved: RecordData | undefined;
          const result = await checkpoints.transaction(async (tx) => {
            const produced = asJson(await work(tx));
            saved = this.#with(name, produced);
            if (!(await checkpoints.save(saved, tx))) throw checkpoints.lost('rolled-back');
            return produced;
          });
          // Only once the transaction committed: a failed COMMIT must not leave a later
          // checkpoint claiming this step finished.
          this.#data = saved!;
          return result as T;
        }
        const result = asJson(await checkpoints.transaction(async (tx) => work(tx)));
        await this.#checkpoint(name, result, 'may-be-kept');
        return result as T;
      } finally {
        this.#openStep = undefined;
      }
    });
  }

  /**
   * Performs an external call outside any transaction with the derived key `<prefix>:<name>`
   * and checkpoints its result, unless an earlier run finished `name`. A crash between the
   * call and its checkpoint makes the next run call again with the same key: the other side's
   * idempotency turns that into a replay.
   */
  async call<T>(name: string, work: (call: StepCall) => T | Promise<T>): Promise<T> {
    if (this.#openStep !== undefined) throw new CallInsideStepError(name, this.#openStep);
    this.#claimName(name);
    const saved = this.#saved()[name];
    if (saved !== undefined) return saved.result as T;
    const result = asJson(await work({ key: this.keyFor(name), name }));
    await this.#exclusive(() => this.#checkpoint(name, result, 'may-be-kept'));
    return result as T;
  }

  async #checkpoint(name: string, result: unknown, writes: 'rolled-back' | 'may-be-kept'): Promise<void> {
    const data = this.#with(name, result);
    if (!(await this.#checkpoints.save(data))) throw this.#checkpoints.lost(writes);
    this.#data = data;
  }

  #claimName(name: string): void {
    if (!stepNamePattern.test(name))
      throw new TypeError(
        `step name "${name}" must be 1–128 characters of letters, digits and . _ : / -, starting with a letter or digit`,
      );
    if (this.#names.has(name)) throw new StepNameRepeatedError(name);
    this.#names.add(name);
  }

  #saved(): Record<string, SavedStep> {
    const steps = this.#data.steps;
    return steps !== null && typeof steps === 'object' ? (steps as Record<string, SavedStep>) : {};
  }

  #with(name: string, result: unknown): RecordData {
    const step: SavedStep =
      result === undefined ? { finishedAtMs: this.#now() } : { result, finishedAtMs: this.#now() };
    return { ...this.#data, steps: { ...this.#saved(), [name]: step } };
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(work);
    this.#turn = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

/** The value as it reads back from a checkpoint; refuses what JSON cannot hold. */
function asJson(value: unknown): unknown {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('a step result must be JSON (or undefined)');
  return JSON.parse(text);
}
