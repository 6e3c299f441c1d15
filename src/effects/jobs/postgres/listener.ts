// LISTEN on a dedicated connection, so runners wake at the commit of an enqueue instead of
// polling. The connection may drop (a restart, a terminated backend): then it reconnects with a
// capped backoff, and wakes the runner once it listens again, since notifications sent in the gap
// are lost. Meanwhile the runner keeps polling. Structural types only: no `pg` import.
// From node:timers, so tests that fake the global timers cannot stall the reconnects.
import { clearTimeout, setTimeout } from 'node:timers';
import type { QueueSubscription, SubscribeHandlers } from '../types.js';

export interface PgNotificationLike {
  channel: string;
  payload?: string | undefined;
}

/**
 * A connection that can LISTEN: a `pg.PoolClient` (given back destroyed with `release(true)`)
 * or a dedicated `pg.Client` (closed with `end()`).
 */
export interface PgListenClientLike {
  query(text: string): Promise<unknown>;
  on(event: 'notification', listener: (message: PgNotificationLike) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  release?(error?: Error | boolean): void;
  end?(): Promise<void>;
}

export interface ListenOptions {
  connect: () => Promise<PgListenClientLike>;
  channel: string;
  handlers: SubscribeHandlers;
  /** The first pause before reconnecting; it doubles up to `maxRetryDelayMs`. */
  firstRetryDelayMs?: number;
  maxRetryDelayMs?: number;
}

const defaultFirstRetryDelayMs = 100;
const defaultMaxRetryDelayMs = 5000;

/** Starts listening; resolves once the first attempt settled (listening, or retrying in the background). */
export async function listenForJobs(options: ListenOptions): Promise<QueueSubscription> {
  const listener = new JobNotificationListener(options);
  await listener.connect();
  return listener;
}

class JobNotificationListener implements QueueSubscription {
  readonly #options: ListenOptions;
  readonly #firstDelayMs: number;
  readonly #maxDelayMs: number;
  #delayMs: number;
  #client: PgListenClientLike | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** True from a failure until listening again: 'lost' and 'restored' are each said once per gap. */
  #lost = false;

  constructor(options: ListenOptions) {
    this.#options = options;
    this.#firstDelayMs = options.firstRetryDelayMs ?? defaultFirstRetryDelayMs;
    this.#maxDelayMs = options.maxRetryDelayMs ?? defaultMaxRetryDelayMs;
    this.#delayMs = this.#firstDelayMs;
  }

  /** One attempt to connect and LISTEN; never throws (a failure schedules the next attempt). */
  async connect(): Promise<void> {
    this.#retry = undefined;
    let client: PgListenClientLike | undefined;
    try {
      client = await this.#options.connect();
      const connected = client;
      // Kept for the client's whole life, even after it is let go: a late 'error' stays harmless.
      connected.on('error', (error) => this.#dropped(connected, error));
      connected.on('end', () => this.#dropped(connected, new Error('the LISTEN connection ended')));
      connected.on('notification', (message) => {
        if (message.channel === this.#options.channel) this.#options.handlers.wake(message.payload);
      });
      await connected.query(`LISTEN "${this.#options.channel}"`);
    } catch (error) {
      if (client !== undefined) dispose(client, asError(error));
      this.#failed(asError(error));
      return;
    }
    if (this.#closed) {
      dispose(client, true);
      return;
    }
    this.#client = client;
    this.#delayMs = this.#firstDelayMs;
    if (this.#lost) {
      this.#lost = false;
      this.#options.handlers.state?.('restored');
      // Whatever was committed while nobody listened is due now.
      this.#options.handlers.wake();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#retry = undefined;
    const client = this.#client;
    this.#client = undefined;
    // Destroyed rather than given back to a pool still subscribed to the channel.
    if (client !== undefined) await dispose(client, true);
  }

  #dropped(client: PgListenClientLike, error: Error): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    dispose(client, error);
    this.#failed(error);
  }

  #failed(error: Error): void {
    if (this.#closed) return;
    if (!this.#lost) {
      this.#lost = true;
      this.#options.handlers.state?.('lost', error);
    }
    const delayMs = this.#delayMs;
    this.#delayMs = Math.min(this.#delayMs * 2, this.#maxDelayMs);
    this.#retry = setTimeout(() => void this.connect(), delayMs);
  }
}

/** Lets a connection go: a pooled client is destroyed (never reused), a dedicated one ended. */
async function dispose(client: PgListenClientLike, error: Error | true): Promise<void> {
  try {
    if (client.release !== undefined) client.release(error);
    else await client.end?.();
  } catch {
    // Already gone: nothing left to close.
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
