// Idempotency keys: one generated per logical POST from the Web Crypto global (no Node imports),
// and the shape check a caller's own key must pass (PROTOCOL rule 5) before anything is sent.

/** A random UUID v4. `randomUUID` is missing in browsers outside secure contexts, so fall back to getRandomValues. */
export function newIdempotencyKey(): string {
  const webCrypto = globalThis.crypto;
  if (typeof webCrypto?.randomUUID === 'function') return webCrypto.randomUUID();
  if (typeof webCrypto?.getRandomValues !== 'function') {
    throw new TypeError('No Web Crypto here to generate idempotency keys; pass idempotencyKey yourself');
  }
  const bytes = webCrypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** 1–255 printable ASCII characters, no commas and no quotes, so it is sent as a bare token. */
export function assertIdempotencyKey(key: string): void {
  if (typeof key !== 'string' || !/^[\x21\x23-\x2b\x2d-\x7e]{1,255}$/.test(key)) {
    throw new TypeError(
      `idempotencyKey must be 1–255 printable ASCII characters without spaces, commas or quotes, got ${JSON.stringify(key)}`,
    );
  }
}
