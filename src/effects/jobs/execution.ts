// One claimed job, run once: its handler with steps over the job's checkpoints, a heartbeat that
// renews the lease (fenced), and the settlement: done, a retry on the backoff, or dead.
import { clearInterval, setInterval } from 'node:timers';
import { type Checkpoints, StepRunner } from '../steps.js';
import type { JobContext, JobHandler } from './context.js';
import { JobLeaseLostError, RetryLaterError } from './errors.js';
import { eventJobOf, type JobEventJob, type JobRunnerActivity } from './events.js';
import type { RunnerSettings } from './runner-options.js';
import type { ClaimedJob, JobLease } from './types.js';

/** `last_error` keeps this many characters of the error's name and message. */
export const maxLastErrorLength = 1000;

export class JobExecution<Tx> {
  readonly job: ClaimedJob;
  readonly info: JobEventJob;
  readonly #settings: RunnerSettings<Tx>;
  readonly #handler: JobHandler<Tx>;
  readonly #lease: JobLease;
  readonly #controller = new AbortController();
  #leaseExpiresAtMs: number;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #renewing = false;
  #completed = false;
  #lost = false;
  #released = false;
  #settled = false;
  #done: Promise<void> | undefined;

  constructor(job: ClaimedJob, settings: RunnerSettings<Tx>) {
    this.job = job;
    this.#settings = settings;
    this.#handler = settings.handlers.get(job.topic)!;
    this.#lease = { id: job.id, token: job.leaseToken };
    this.#leaseExpiresAtMs = job.leaseExpiresAtMs;
    this.info = eventJobOf(job, settings.maxAttempts);
  }

  /** Runs the handler and settles the job, once. Never rejects: failures become events. */
  start(): Promise<void> {
    this.#done ??= this.#run();
    return this.#done;
  }

  /** Settles when the job is settled (done, retried, dead, lost or released). */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  async #run(): Promise<void> {
    this.#settings.emit({ type: 'claimed', job: this.info });
    this.#heartbeat = setInterval(() => void this.#renew(), this.#settings.heartbeatMs);
    let failure: { error: unknown } | undefined;
    try {
      await this.#handler(this.#context());
    } catch (error) {
      failure = { error };
    } finally {
      clearInterval(this.#heartbeat);
    }
    try {
      if (failure === undefined) await this.#succeeded();
      else await this.#failed(failure.error);
    } finally {
      this.#settled = true;
    }
  }

  /**
   * Shutdown: aborts the handler and hands the job back as queued, its attempt not counted
   * (fenced: if it completed or was taken over meanwhile, nothing changes).
   */
  async release(reason: Error): Promise<void> {
    if (this.#settled || this.#completed) return;
    this.#released = true;
    // A handler that ignores its aborted signal must not keep renewing (nor keep the process alive).
    clearInterval(this.#heartbeat);
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
    await this.#write('release', async () => {
      if (await this.#settings.queue.release(this.#lease, this.#settings.now()))
        this.#settings.emit({ type: 'released', job: this.info });
    });
  }

  #context(): JobContext<Tx> {
    const { queue, now } = this.#settings;
    const checkpoints: Checkpoints<Tx> = {
      data: this.job.data,
      keyPrefix: `job:${this.job.id}`,
      sharesTransaction: true,
      save: (data, tx) => queue.saveData(this.#lease, data, now(), tx),
      transaction: (work) => queue.transaction(work),
      lost: (writes) => this.#loseLease(writes),
    };
    const steps = new StepRunner(checkpoints, now);
    return {
      job: { ...this.info, payload: this.job.payload, createdAtMs: this.job.createdAtMs },
      key: checkpoints.keyPrefix,
      step: (name, work) => steps.step(name, work),
      call: (name, work) => steps.call(name, work),
      complete: (work) => this.#complete(work),
      signal: this.#controller.signal,
    };
  }

  async #complete<T>(work: (tx: Tx) => T | Promise<T>): Promise<T> {
    if (this.#completed) throw new Error(`complete() was already called for job ${this.job.id}`);
    // Known lost already: nothing was started, so nothing needs rolling back.
    if (this.#lost) throw new JobLeaseLostError(this.job.id, 'rolled-back');
    const { queue, now } = this.#settings;
    const result = await queue.transaction(async (tx) => {
      const value = await work(tx);
      if (!(await queue.complete(this.#lease, now(), tx))) throw this.#loseLease('rolled-back');
      return value;
    });
    this.#completed = true;
    this.#settings.emit({ type: 'completed', job: this.info });
    return result;
  }

  async #succeeded(): Promise<void> {
    if (this.#completed || this.#released) return;
    if (this.#lost) {
      this.#settings.emit({ type: 'lease-lost', job: this.info });
      return;
    }
    await this.#write('complete', async () => {
      const done = await this.#settings.queue.complete(this.#lease, this.#settings.now());
      if (done) this.#settings.emit({ type: 'completed', job: this.info });
      else if (!this.#released) this.#settings.emit({ type: 'lease-lost', job: this.info });
    });
  }

  async #failed(error: unknown): Promise<void> {
    const { queue, emit, now } = this.#settings;
    if (this.#completed) {
      // The completion committed: the job is done whatever the handler did afterwards.
      emit({ type: 'error', during: 'handler-after-complete', error, job: this.info });
      return;
    }
    if (this.#released) return;
    if (this.#lost || error instanceof JobLeaseLostError) {
      this.#lost = true;
      emit({ type: 'lease-lost', job: this.info });
      return;
    }
    const text = errorText(error);
    const nowMs = now();
    await this.#write('fail', async () => {
      if (this.info.attempt >= this.info.maxAttempts) {
        if (await queue.fail(this.#lease, { state: 'dead', error: text, nowMs }))
          emit({ type: 'dead', job: this.info, error: text });
        else if (!this.#released) emit({ type: 'lease-lost', job: this.info });
        return;
      }
      const delayMs =
        error instanceof RetryLaterError
          ? error.delayMs
          : this.#settings.backoff(this.info.attempt, this.#settings.random());
      const runAtMs = nowMs + delayMs;
      if (await queue.fail(this.#lease, { state: 'queued', runAtMs, error: text, nowMs }))
        emit({ type: 'retry-scheduled', job: this.info, error: text, delayMs, runAtMs });
      else if (!this.#released) emit({ type: 'lease-lost', job: this.info });
    });
  }

  /** Renews the lease, fenced; a refusal means another run holds the job now. */
  async #renew(): Promise<void> {
    if (this.#renewing || this.#lost || this.#released) return;
    this.#renewing = true;
    const { queue, now, leaseMs, emit } = this.#settings;
    const nowMs = now();
    try {
      const leaseExpiresAtMs = nowMs + leaseMs;
      if (await queue.renew(this.#lease, leaseExpiresAtMs, nowMs)) {
        this.#leaseExpiresAtMs = leaseExpiresAtMs;
        emit({ type: 'lease-renewed', job: this.info, leaseExpiresAtMs });
      } else {
        this.#loseLease('may-be-kept');
      }
    } catch (error) {
      emit({ type: 'error', during: 'renew', error, job: this.info });
      // Unreachable past the lease's end: another runner may hold the job by now.
      if (nowMs >= this.#leaseExpiresAtMs) this.#loseLease('may-be-kept');
    } finally {
      this.#renewing = false;
    }
  }

  #loseLease(writes: 'rolled-back' | 'may-be-kept'): JobLeaseLostError {
    this.#lost = true;
    const error = new JobLeaseLostError(this.job.id, writes);
    if (!this.#controller.signal.aborted) this.#controller.abort(error);
    return error;
  }

  /** A write of the runner's own; its failure is reported, never thrown (the lease then lapses). */
  async #write(during: JobRunnerActivity, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.#settings.emit({ type: 'error', during, error, job: this.info });
    }
  }
}

/** The error as `last_error` keeps it: name and message, cut to `maxLastErrorLength`. */
export function errorText(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = `${error.name}: ${error.message}`;
  else {
    try {
      text = `thrown: ${typeof error === 'string' ? error : JSON.stringify(error)}`;
    } catch {
      text = `thrown: ${String(error)}`;
    }
  }
  return text.length > maxLastErrorLength ? `${text.slice(0, maxLastErrorLength - 1)}…` : text;
}
