// Raw HTTP/1.1 over a socket, for tests that must send what fetch would refuse or tidy: each
// request goes out byte for byte as built, one per connection, and the answer is read by hand.
import { connect } from 'node:net';

export interface RawRequest {
  method?: string;
  /** The request-target exactly as sent (latin1: one char per byte). */
  target: string;
  /** In order, repeats allowed; values are latin1 (send UTF-8 through `utf8AsLatin1`). */
  headers?: [string, string][];
  body?: Buffer | string;
  /** Default: the body's length when there is a body; a string is sent as it is. */
  contentLength?: number | string | 'omit';
  /** Default demo-writer-a; false sends no Authorization. */
  token?: string | false;
  /** Default true; false sends no Host. */
  host?: boolean;
  /**
   * After writing: `wait` for the answer (default); `end` half-closes first, which tells Node
   * the client is gone once the request is complete; `abort` destroys the socket at once.
   */
  afterWrite?: 'wait' | 'end' | 'abort';
}

export interface Answer {
  status: number;
  /** Lower-case names; repeats joined with ', '. */
  headers: Record<string, string>;
  body: string;
}

/** A request and what came back for it. */
export interface Exchange {
  request: RawRequest;
  /** undefined: the server closed the connection without an answer. */
  answer: Answer | undefined;
}

export interface RawHttpOptions {
  /**
   * The server's body limit: a large body pauses once past it, so an early 413 is read before
   * the server closes the connection. Default 1 MiB (the reference service's limit).
   */
  bodyLimitBytes?: number;
  /** How long to wait for an answer before failing the test. Default 15 s. */
  timeoutMs?: number;
}

export interface RawHttp {
  send(request: RawRequest): Promise<Exchange>;
  /** Sends `bytes` exactly; `head` says a HEAD was sent, so the answer has no body. */
  sendBytes(bytes: Buffer, head: boolean, afterWrite: 'wait' | 'end' | 'abort'): Promise<Answer | undefined>;
  /** Requests sent so far through this client (for the run's summary line). */
  readonly requests: number;
}

export const defaultRawBodyLimitBytes = 1024 * 1024;
export const defaultRawTimeoutMs = 15_000;
/** Large bodies go out in pieces of this size. */
const pieceBytes = 64 * 1024;
/** How long a large request waits for an early answer at each pause point. */
const pauseMs = 100;

/** The bytes of `request` as they go on the wire (with `Connection: close`). */
export function encode(request: RawRequest): Buffer {
  const body = typeof request.body === 'string' ? Buffer.from(request.body) : request.body;
  const lines = [`${request.method ?? 'GET'} ${request.target} HTTP/1.1`];
  if (request.host !== false) lines.push('Host: 127.0.0.1');
  if (request.token !== false) lines.push(`Authorization: Bearer ${request.token ?? 'demo-writer-a'}`);
  lines.push('Connection: close');
  for (const [name, value] of request.headers ?? []) lines.push(`${name}: ${value}`);
  const length = request.contentLength ?? (body ? body.length : 'omit');
  if (length !== 'omit') lines.push(`Content-Length: ${length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

/** A raw HTTP client for the server at `baseUrl` (only its port is used; the host is loopback). */
export function rawHttp(baseUrl: string, options: RawHttpOptions = {}): RawHttp {
  const port = Number(new URL(baseUrl).port);
  const bodyLimitBytes = options.bodyLimitBytes ?? defaultRawBodyLimitBytes;
  const timeoutMs = options.timeoutMs ?? defaultRawTimeoutMs;
  let requests = 0;

  const sendBytes = (bytes: Buffer, head: boolean, afterWrite: 'wait' | 'end' | 'abort') => {
    requests++;
    return new Promise<Answer | undefined>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let received = Buffer.alloc(0);
      let settled = false;
      const finish = (answer: Answer | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(answer);
      };
      const timer = setTimeout(() => {
        settled = true;
        socket.destroy();
        reject(new Error(`no answer within ${timeoutMs} ms to ${bytes.subarray(0, 200).toString('latin1')}`));
      }, timeoutMs);
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const answer = parseAnswer(received, head, false);
        if (answer) finish(answer);
      });
      socket.on('error', () => {}); // EPIPE/ECONNRESET after the server closed: the answer decides
      socket.on('close', () => finish(parseAnswer(received, head, true)));
      // A large request goes out in pieces, pausing for an early answer after its head and once
      // past the body limit, and stops when an answer begins. Node closes the connection right
      // after a 413 without draining the rest, and a write into that closed connection (EPIPE)
      // destroys the client's socket before it reads the 413 already waiting for it — the usual
      // HTTP/1.1 hazard that careful clients (or Expect: 100-continue) avoid the same way.
      const headLength = bytes.indexOf('\r\n\r\n') + 4;
      const large = bytes.length - headLength > pieceBytes;
      const pieces: Buffer[] = large ? [bytes.subarray(0, headLength)] : [bytes];
      if (large) {
        for (let at = headLength; at < bytes.length; at += pieceBytes) {
          pieces.push(bytes.subarray(at, at + pieceBytes));
        }
      }
      let bodySent = 0;
      const answerOrPause = () =>
        new Promise<void>((resume) => {
          const onData = () => {
            clearTimeout(pause);
            resume();
          };
          const pause = setTimeout(() => {
            socket.off('data', onData);
            resume();
          }, pauseMs);
          socket.once('data', onData);
        });
      const writeFrom = (index: number) => {
        if (settled || socket.destroyed || received.length > 0) return;
        if (index < pieces.length) {
          socket.write(pieces[index]!, (error) => {
            if (error) return;
            if (index > 0) bodySent += pieces[index]!.length;
            if (large && (index === 0 || bodySent > bodyLimitBytes))
              answerOrPause().then(() => writeFrom(index + 1));
            else writeFrom(index + 1);
          });
        } else if (afterWrite === 'abort') finish(undefined);
        else if (afterWrite === 'end') socket.end();
      };
      writeFrom(0);
    });
  };

  return {
    sendBytes,
    send: (request) =>
      sendBytes(encode(request), request.method === 'HEAD', request.afterWrite ?? 'wait').then((answer) => ({
        request,
        answer,
      })),
    get requests() {
      return requests;
    },
  };
}

/** One complete response from `bytes` (skipping 1xx), or undefined while it is incomplete. */
export function parseAnswer(bytes: Buffer, head: boolean, closed: boolean): Answer | undefined {
  let rest = bytes;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...fieldLines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of fieldLines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let body = rest.subarray(end + 4);
    if (status >= 100 && status < 200) {
      rest = body;
      continue;
    }
    if (head || status === 204 || status === 304) return { status, headers, body: '' };
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (body.length < length) return closed ? { status, headers, body: body.toString() } : undefined;
      return { status, headers, body: body.subarray(0, length).toString() };
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunks: Buffer[] = [];
      for (;;) {
        const lineEnd = body.indexOf('\r\n');
        if (lineEnd < 0) return undefined;
        const size = Number.parseInt(body.subarray(0, lineEnd).toString(), 16);
        if (size === 0) return { status, headers, body: Buffer.concat(chunks).toString() };
        if (body.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
        body = body.subarray(lineEnd + 2 + size + 2);
      }
    }
    return closed ? { status, headers, body: body.toString() } : undefined;
  }
}

/** The start of the request as sent and of its answer, for assertion messages. */
export function describeExchange({ request, answer }: Exchange): string {
  const shown = encode(request).subarray(0, 600).toString('latin1');
  const got = answer
    ? `${answer.status} ${answer.headers['content-type']} ${answer.body.slice(0, 400)}`
    : 'none';
  return `request:\n${JSON.stringify(shown)}\nanswer: ${got}`;
}

/** UTF-8 bytes of `text` as a latin1 string, so `encode` sends them unchanged. */
export function utf8AsLatin1(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** Drops the control characters a header value may not hold (tab stays). */
export function stripControls(text: string): string {
  return [...text].filter((c) => c === '\t' || (c >= ' ' && c !== '\x7f')).join('');
}

/** Percent-encodes every byte that is not unreserved; lone surrogates become their CESU-8 bytes. */
export function percentEncode(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    const bytes =
      code >= 0xd800 && code <= 0xdfff
        ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
        : [...Buffer.from(char, 'utf8')];
    for (const byte of bytes) {
      const c = String.fromCharCode(byte);
      out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}
