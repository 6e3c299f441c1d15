// The service's Redis connection for idempotency records: node-redis, bounded. A command
// without an answer for REDIS_COMMAND_TIMEOUT_MS fails (→ 503 problem) and the stalled
// connection is replaced. One watchdog timer for all commands instead of node-redis's
// per-command `timeout` option, whose AbortSignal timer per command costs measurable CPU.
import type { createClient } from 'redis';
import type { NodeRedisCommandOptions, NodeRedisLike } from 'retrysafe/stores/redis';
import { defaultRedisLimits, type RedisLimits } from '../config.js';

type Client = ReturnType<typeof createClient>;

export interface RedisConnection {
  /** What the store sends its commands through. */
  client: NodeRedisLike;
  /** One PING through the same bound, for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class RedisCommandTimeoutError extends Error {
  override name = 'RedisCommandTimeoutError';
  constructor(timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms; the connection was replaced.`);
  }
}

interface Pending {
  startedMs: number;
  reject(error: Error): void;
}

export async function openRedisConnection(
  url: string,
  limits: RedisLimits = defaultRedisLimits,
): Promise<RedisConnection> {
  const { createClient } = await import('redis');
  const open = (): Client => {
    const client = createClient({
      url,
      // Fail fast when Redis is away: a command errors (→ 503 problem) instead of queueing forever.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: limits.connectTimeoutMs,
        // Keep reconnecting, backing off to 2 s; requests meanwhile get 503.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000),
      },
    });
    client.on('error', () => {});
    return client;
  };
  let current = open();
  await bounded(current.connect(), limits.connectTimeoutMs + limits.commandTimeoutMs, () =>
    current.destroy(),
  );

  // Commands in the order they were sent; Redis answers one connection in that order, so the
  // first entry is the oldest still waiting.
  const pending = new Map<number, Pending>();
  let nextId = 0;
  // A connection whose handshake never completes (a stalled server that accepts) would stay
  // "not ready" forever: past connect + command timeout it is replaced too.
  const notReadyLimitMs = limits.connectTimeoutMs + limits.commandTimeoutMs;
  let notReadySinceMs: number | undefined;
  const replace = () => {
    const stalled = current;
    current = open();
    current.connect().catch(() => {});
    stalled.destroy();
    notReadySinceMs = undefined;
  };
  const watchdog = setInterval(
    () => {
      const nowMs = performance.now();
      if (current.isReady) notReadySinceMs = undefined;
      else if (notReadySinceMs === undefined) notReadySinceMs = nowMs;
      else if (nowMs - notReadySinceMs > notReadyLimitMs) return replace();
      const oldest = pending.values().next();
      if (oldest.done || nowMs - oldest.value.startedMs < limits.commandTimeoutMs) return;
      const error = new RedisCommandTimeoutError(limits.commandTimeoutMs);
      for (const entry of pending.values()) entry.reject(error);
      pending.clear();
      replace();
    },
    Math.max(10, Math.floor(limits.commandTimeoutMs / 4)),
  );
  watchdog.unref();

  const sendCommand = (args: (string | Buffer)[], options?: NodeRedisCommandOptions): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { startedMs: performance.now(), reject });
      const settle = (done: () => void) => {
        if (pending.delete(id)) done();
      };
      try {
        current.sendCommand(args, options as Parameters<Client['sendCommand']>[1]).then(
          (value) => settle(() => resolve(value)),
          (error: unknown) => settle(() => reject(error)),
        );
      } catch (error) {
        settle(() => reject(error));
      }
    });

  return {
    client: { sendCommand },
    async ping() {
      await sendCommand(['PING']);
    },
    async close() {
      clearInterval(watchdog);
      try {
        await current.quit();
      } catch {
        current.destroy();
      }
    },
  };
}

/** `promise`, or a rejection (after `onTimeout`) when it has not settled within `ms`. */
async function bounded<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout();
          reject(new Error(`Redis did not become ready within ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
