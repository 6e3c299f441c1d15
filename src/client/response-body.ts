// Answers that are not JSON: text, bytes, a stream, or the raw Response, as the caller asks with
// `responseType`. Text, bytes and streams are held to a size cap, so a runaway answer cannot
// exhaust memory; JSON keeps its content-type check (transport.ts).

export type ResponseType = 'json' | 'text' | 'bytes' | 'stream' | 'response';

export const responseTypes: readonly ResponseType[] = ['json', 'text', 'bytes', 'stream', 'response'];

/** 10 MiB: far above what an API answer needs, far below what hurts a browser tab. */
export const defaultMaxResponseBytes = 10 * 1024 * 1024;

/** Thrown (or raised in the stream) when an answer is larger than the cap. */
export class ResponseTooLargeError extends RangeError {
  override readonly name = 'ResponseTooLargeError';
  constructor(readonly limitBytes: number) {
    super(`The answer is larger than maxResponseBytes (${limitBytes} bytes).`);
  }
}

/** Reads the whole body as bytes, stopping as soon as it passes `limitBytes`. */
export async function readBytes(response: Response, limitBytes: number): Promise<Uint8Array> {
  rejectDeclaredSize(response, limitBytes);
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel();
      throw new ResponseTooLargeError(limitBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** The body as a stream that errors with ResponseTooLargeError once it passes `limitBytes`. */
export function cappedStream(response: Response, limitBytes: number): ReadableStream<Uint8Array> {
  rejectDeclaredSize(response, limitBytes);
  if (response.body === null) return new Blob([]).stream();
  let total = 0;
  return response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength;
        if (total > limitBytes) controller.error(new ResponseTooLargeError(limitBytes));
        else controller.enqueue(chunk);
      },
    }),
  );
}

/** A Content-Length over the cap fails before a byte is read. */
function rejectDeclaredSize(response: Response, limitBytes: number): void {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limitBytes) {
    void response.body?.cancel();
    throw new ResponseTooLargeError(limitBytes);
  }
}
