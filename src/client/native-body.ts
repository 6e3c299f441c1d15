// Bodies fetch sends as they are (FormData, Blob, ArrayBuffer and its views, ReadableStream),
// turned once per logical call into something every attempt sends byte for byte the same.

/** What an attempt hands to fetch. A stream is only ever sent by a call that makes one attempt. */
export type WireBody = string | Uint8Array<ArrayBuffer> | Blob | ReadableStream<Uint8Array>;

export interface NativeBody {
  body: WireBody;
  contentType: string;
  /** True when the body is a stream fetch consumes: it cannot be sent a second time. */
  streamed: boolean;
}

const octetStream = 'application/octet-stream';

/** True for the body types fetch accepts natively (other than strings and URLSearchParams). */
export function isNativeBody(value: unknown): boolean {
  return (
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value) ||
    (typeof Blob === 'function' && value instanceof Blob) ||
    (typeof FormData === 'function' && value instanceof FormData) ||
    (typeof ReadableStream === 'function' && value instanceof ReadableStream)
  );
}

/**
 * @param mayRepeat whether the call may send the body more than once (a retry or a 307): a
 *   stream is then read into memory first, because a consumed stream cannot be replayed.
 */
export async function encodeNativeBody(
  value: unknown,
  explicitContentType: string | undefined,
  mayRepeat: boolean,
): Promise<NativeBody> {
  if (typeof FormData === 'function' && value instanceof FormData) {
    // fetch draws a fresh multipart boundary per request, so the bytes (and the server's
    // fingerprint of them) would differ on each retry; encode it once and resend those bytes.
    const encoded = new Response(value);
    const bytes = new Uint8Array(await encoded.arrayBuffer());
    return { body: bytes, contentType: encoded.headers.get('content-type') ?? octetStream, streamed: false };
  }
  if (typeof Blob === 'function' && value instanceof Blob) {
    // A Blob is immutable, so every attempt sends the same bytes without a copy.
    return { body: value, contentType: explicitContentType ?? (value.type || octetStream), streamed: false };
  }
  if (value instanceof ArrayBuffer) {
    // Copied, so a caller that reuses its buffer while we wait to retry cannot change what is resent.
    return {
      body: new Uint8Array(value.slice(0)),
      contentType: explicitContentType ?? octetStream,
      streamed: false,
    };
  }
  if (ArrayBuffer.isView(value)) {
    const copy = new Uint8Array(value.byteLength);
    copy.set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    return { body: copy, contentType: explicitContentType ?? octetStream, streamed: false };
  }
  const stream = value as ReadableStream<Uint8Array>;
  if (!mayRepeat) return { body: stream, contentType: explicitContentType ?? octetStream, streamed: true };
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  return { body: bytes, contentType: explicitContentType ?? octetStream, streamed: false };
}
