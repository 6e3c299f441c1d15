// A loopback TCP proxy between the service processes and PostgreSQL for `retrysafe chaos`: it
// follows each connection's transaction state (from the server's ReadyForQuery messages) so it
// can cut a connection in the middle of a transaction, and it can stall all traffic for a while
// (bytes wait, nothing is lost) the way a frozen database server would.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** How long an armed cut waits for a connection inside a transaction before cutting any. */
const cutWaitMs = 1_000;
/** With a cut armed, each message on an in-transaction connection is the one cut with this chance. */
const cutChance = 0.5;

export interface DbProxyCounts {
  connections: number;
  /** Connections reset by `cut()`, … */
  cuts: number;
  /** … and of those, how many were inside a transaction at that moment. */
  cutsInTransaction: number;
  stalls: number;
}

export interface DbProxy {
  port: number;
  counts: DbProxyCounts;
  /** `url` (postgres://…) rewritten to go through this proxy. */
  through(url: string): string;
  /**
   * Resets one connection in the middle of a transaction (a statement or its answer is lost:
   * sometimes the answer to COMMIT, an ambiguous commit), or any connection if none is inside
   * one within a second. Resolves once it has cut (or there was nothing to cut).
   */
  cut(): Promise<void>;
  /** Forwards nothing for `ms` (connections stay open; bytes wait in the socket buffers). */
  stall(ms: number, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/**
 * Follows the server → client PostgreSQL message stream (1 type byte, a 4-byte length, the
 * body) to read the transaction status byte of each ReadyForQuery ('Z'): I idle, T in a
 * transaction, E in a failed one. The service connects without TLS, so the stream is plain.
 */
export class ServerMessageReader {
  #header = Buffer.alloc(5);
  #headerFill = 0;
  #bodyLeft = 0;
  #type = 0;
  #broken = false;
  /** The last ReadyForQuery status, or undefined before the first (the connection is starting). */
  status: 'I' | 'T' | 'E' | undefined;

  get inTransaction(): boolean {
    return this.status === 'T' || this.status === 'E';
  }

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && !this.#broken) {
      if (this.#bodyLeft > 0) {
        if (this.#type === 0x5a && this.#bodyLeft === 1) {
          const status = String.fromCharCode(chunk[i]!);
          if (status === 'I' || status === 'T' || status === 'E') this.status = status;
        }
        const take = Math.min(this.#bodyLeft, chunk.length - i);
        i += take;
        this.#bodyLeft -= take;
        continue;
      }
      this.#header[this.#headerFill++] = chunk[i++]!;
      if (this.#headerFill === 5) {
        this.#headerFill = 0;
        this.#type = this.#header[0]!;
        const length = this.#header.readInt32BE(1);
        if (length < 4) this.#broken = true; // not a PostgreSQL stream: stop guessing
        this.#bodyLeft = length - 4;
      }
    }
  }
}

interface Pair {
  client: Socket;
  upstream: Socket;
  server: ServerMessageReader;
}

export async function startDbProxy(
  target: { host: string; port: number },
  random: () => number = Math.random,
): Promise<DbProxy> {
  const counts: DbProxyCounts = { connections: 0, cuts: 0, cutsInTransaction: 0, stalls: 0 };
  const pairs = new Set<Pair>();
  let stalledUntil = 0;
  let armed: (() => void) | undefined;

  const cutPair = (pair: Pair) => {
    counts.cuts++;
    if (pair.server.inTransaction) counts.cutsInTransaction++;
    pair.client.resetAndDestroy();
    pair.upstream.resetAndDestroy();
    pairs.delete(pair);
  };
  /** With a cut armed, maybe cut `pair` now instead of forwarding `chunk`. */
  const cutHere = (pair: Pair): boolean => {
    if (!armed || !pair.server.inTransaction || random() >= cutChance) return false;
    const done = armed;
    armed = undefined;
    cutPair(pair);
    done();
    return true;
  };

  const server: Server = createServer((client) => {
    counts.connections++;
    const upstream = createConnection(target);
    const pair: Pair = { client, upstream, server: new ServerMessageReader() };
    pairs.add(pair);
    if (Date.now() < stalledUntil) {
      client.pause();
      upstream.pause();
    }
    for (const socket of [client, upstream]) {
      socket.on('error', () => {});
      socket.once('close', () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (!cutHere(pair)) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (cutHere(pair)) return;
      pair.server.feed(chunk);
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('database proxy has no port');

  return {
    port: address.port,
    counts,
    through(url) {
      const rewritten = new URL(url);
      rewritten.hostname = '127.0.0.1';
      rewritten.port = String(address.port);
      return rewritten.href;
    },
    cut() {
      if (armed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          if (armed !== done) return;
          armed = undefined;
          const all = [...pairs];
          const victim = all[Math.floor(random() * all.length)];
          if (victim) cutPair(victim);
          resolve();
        }, cutWaitMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        armed = done;
      });
    },
    async stall(ms, signal) {
      counts.stalls++;
      stalledUntil = Date.now() + ms;
      for (const pair of pairs) {
        pair.client.pause();
        pair.upstream.pause();
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      stalledUntil = 0;
      for (const pair of pairs) {
        pair.client.resume();
        pair.upstream.resume();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        const done = armed;
        armed = undefined;
        done?.();
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
