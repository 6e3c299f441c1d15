// Fault injection for tests and chaos runs, off unless the simulator is started with `faults`.
// Every fault keeps the invariant a caller relies on: a charge is either committed (and a retry
// with its key replays it) or not made at all. A refused write fails before the claim is taken;
// a reset or a slow answer happens only after the commit, on the way out.
import { randomInt } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onSendHookHandler, preHandlerHookHandler } from 'fastify';
import { ProblemError } from 'retrysafe/http';
import { injectedFaultType, sleep } from '../test-hooks.js';

/** Delay of a slow answer when `slowRate` is given without `slowMs`. */
export const defaultSlowMs = 1_000;
/** The longest delay a slow answer may have. */
export const maxSlowMs = 120_000;
/** Seconds a refused write tells its caller to wait. */
export const injectedRetryAfterSeconds = 1;

export interface PaymentsFaults {
  /** Share of writes refused with 503 + Retry-After before anything is charged (0–1). */
  failRate?: number;
  /** Share of successful writes whose connection is destroyed after the commit, unanswered (0–1). */
  resetAfterChargeRate?: number;
  /** Share of successful writes answered `slowMs` late, after the commit (0–1). */
  slowRate?: number;
  slowMs?: number;
  /** Seeds the rolls, so a run can be repeated; default a random seed (reported by `/_faults`). */
  seed?: number;
}

export type FaultSettings = Required<PaymentsFaults>;

/** How many times each fault was injected since start. */
export interface InjectedFaults {
  failed: number;
  reset: number;
  slowed: number;
}

/** A write refused on purpose, typed so a chaos run can tell it from a real outage. */
export class InjectedOutageError extends ProblemError {
  override name = 'InjectedOutageError';
  constructor() {
    super({
      status: 503,
      type: injectedFaultType,
      title: 'Service unavailable',
      detail: 'Injected fault: the payment provider refused this request before charging; retry later.',
      headers: { 'retry-after': String(injectedRetryAfterSeconds) },
    });
  }
}

/** Checks fault options once; a bad one is a programmer error, so this throws. */
export function normaliseFaults(
  faults: PaymentsFaults,
  base: FaultSettings = { failRate: 0, resetAfterChargeRate: 0, slowRate: 0, slowMs: 0, seed: 0 },
): FaultSettings {
  const settings: FaultSettings = {
    failRate: rate('failRate', faults.failRate ?? base.failRate),
    resetAfterChargeRate: rate(
      'resetAfterChargeRate',
      faults.resetAfterChargeRate ?? base.resetAfterChargeRate,
    ),
    slowRate: rate('slowRate', faults.slowRate ?? base.slowRate),
    slowMs: faults.slowMs ?? base.slowMs,
    seed: faults.seed ?? base.seed,
  };
  if (settings.slowRate > 0 && faults.slowMs === undefined && base.slowMs === 0)
    settings.slowMs = defaultSlowMs;
  if (!Number.isInteger(settings.slowMs) || settings.slowMs < 0 || settings.slowMs > maxSlowMs) {
    throw new TypeError(
      `faults.slowMs must be a whole number from 0 to ${maxSlowMs}, got ${settings.slowMs}`,
    );
  }
  if (!Number.isInteger(settings.seed) || settings.seed < 0 || settings.seed > 0xffff_ffff) {
    throw new TypeError(`faults.seed must be a whole number from 0 to 4294967295, got ${settings.seed}`);
  }
  return settings;
}

function rate(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new TypeError(`faults.${name} must be a number from 0 to 1, got ${String(value)}`);
  }
  return value;
}

/** mulberry32: small, fast and good enough to spread faults; the same seed rolls the same way. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Roll {
  reset: boolean;
  slow: boolean;
}

/** Rolls the faults of each write and applies them at the two points where they are safe. */
export class FaultInjector {
  #settings: FaultSettings;
  #random: () => number;
  readonly #rolls = new WeakMap<FastifyRequest, Roll>();
  readonly injected: InjectedFaults = { failed: 0, reset: 0, slowed: 0 };

  constructor(faults: PaymentsFaults) {
    this.#settings = normaliseFaults({ ...faults, seed: faults.seed ?? randomInt(0xffff_ffff) });
    this.#random = seededRandom(this.#settings.seed);
  }

  get settings(): FaultSettings {
    return { ...this.#settings };
  }

  /** Replaces the fields given; a new seed restarts the sequence of rolls. */
  update(faults: PaymentsFaults): FaultSettings {
    this.#settings = normaliseFaults(faults, this.#settings);
    if (faults.seed !== undefined) this.#random = seededRandom(this.#settings.seed);
    return this.settings;
  }

  /**
   * Route hooks of a write. preHandler runs after the key and the body were checked and before
   * the idempotency claim, so a refused write leaves nothing behind; onSend runs after the
   * commit, before the first byte of the answer.
   */
  hooks(): { preHandler: preHandlerHookHandler; onSend: onSendHookHandler } {
    const preHandler: preHandlerHookHandler = (request, _reply, done) => {
      // Three rolls per write, always, so one rate's change does not shift the others' sequence.
      const { failRate, resetAfterChargeRate, slowRate } = this.#settings;
      const fail = this.#random() < failRate;
      const reset = this.#random() < resetAfterChargeRate;
      const slow = this.#random() < slowRate;
      if (fail) {
        this.injected.failed += 1;
        done(new InjectedOutageError());
        return;
      }
      this.#rolls.set(request, { reset, slow });
      done();
    };
    const onSend: onSendHookHandler = async (request: FastifyRequest, reply: FastifyReply, payload) => {
      const roll = this.#rolls.get(request);
      // Once per request: when the caller hangs up during a slow answer, the idempotency adapter
      // sends the answer a second time (its reply resolves on the close, before the first send
      // finished), and that second pass must not be delayed or counted again.
      this.#rolls.delete(request);
      // Only a write that was charged (first answer or replay): a refusal is left as it is.
      if (roll === undefined || reply.statusCode < 200 || reply.statusCode >= 300) return payload;
      if (roll.slow && this.#settings.slowMs > 0) {
        this.injected.slowed += 1;
        await sleep(this.#settings.slowMs);
      }
      if (roll.reset) {
        this.injected.reset += 1;
        request.log.info('fault: destroying the connection after the commit, unanswered');
        request.raw.socket.destroy();
      }
      return payload;
    };
    return { preHandler, onSend };
  }
}
