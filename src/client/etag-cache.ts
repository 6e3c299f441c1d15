// A small ETag cache for GET: it remembers the last JSON answer and ETag per URL, sends
// If-None-Match, and on 304 hands back the remembered data. Bounded (least recently used goes
// first) and per client; any write through the client to a URL forgets that URL.

export interface EtagCacheOptions {
  /** How many URLs to remember (default 100). */
  maxEntries?: number;
}

export const defaultEtagCacheEntries = 100;

interface Entry {
  etag: string;
  data: unknown;
}

export class EtagCache {
  readonly #entries = new Map<string, Entry>();

  constructor(readonly maxEntries: number) {}

  get(url: string): Entry | undefined {
    const entry = this.#entries.get(url);
    if (entry === undefined) return undefined;
    // Re-inserted, so Map order is recency order and the first key is the one to evict.
    this.#entries.delete(url);
    this.#entries.set(url, entry);
    return entry;
  }

  set(url: string, etag: string, data: unknown): void {
    this.#entries.delete(url);
    this.#entries.set(url, { etag, data });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  forget(url: string): void {
    this.#entries.delete(url);
  }

  get size(): number {
    return this.#entries.size;
  }
}
