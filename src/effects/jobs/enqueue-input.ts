// What `enqueue` accepts, decided once for both dialects: every field checked and normalised
// before any SQL runs, so a bad job fails in the caller's code with a clear TypeError.
import { randomUUID } from 'node:crypto';
import type { EnqueueInput } from './types.js';

export const maxTopicLength = 200;
export const maxJobIdLength = 200;
export const maxDedupeKeyLength = 255;
/** The most attempts a job may be given. */
export const maxAttemptsLimit = 1000;
/** Default bound on a payload's JSON text; a queue's `maxPayloadBytes` changes it. */
export const defaultMaxPayloadBytes = 256 * 1024;

const topicPattern = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,${maxTopicLength - 1}}$`);
const jobIdPattern = new RegExp(`^[\\x21-\\x7e]{1,${maxJobIdLength}}$`);
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
const controlCharacter = /[\u0000-\u001f\u007f]/;
// A NUL escape that JSON.stringify wrote for a NUL character (an odd run of backslashes before u0000).
const escapedNul = /(?<!\\)(?:\\\\)*\\u0000/;

/** The row `enqueue` writes, fully filled. */
export interface NormalizedJob {
  id: string;
  topic: string;
  payloadJson: string;
  dedupeKey: string | null;
  runAtMs: number;
  maxAttempts: number | null;
  nowMs: number;
}

/** Throws a TypeError unless `topic` is a topic name. */
export function checkTopic(topic: unknown, what = 'topic'): string {
  if (typeof topic !== 'string' || !topicPattern.test(topic)) {
    throw new TypeError(
      `${what} ${JSON.stringify(topic)} must be 1–${maxTopicLength} characters of letters, digits and . _ : / -, starting with a letter or digit`,
    );
  }
  return topic;
}

/** Throws a TypeError unless `maxAttempts` is a whole number of attempts within bounds. */
export function checkMaxAttempts(maxAttempts: unknown, what = 'maxAttempts'): number {
  if (
    typeof maxAttempts !== 'number' ||
    !Number.isInteger(maxAttempts) ||
    maxAttempts < 1 ||
    maxAttempts > maxAttemptsLimit
  ) {
    throw new TypeError(`${what} must be a whole number from 1 to ${maxAttemptsLimit}, got ${maxAttempts}`);
  }
  return maxAttempts;
}

export function checkMaxPayloadBytes(bytes: unknown): number {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 2)
    throw new TypeError(`maxPayloadBytes must be a whole number of bytes ≥ 2, got ${bytes}`);
  return bytes;
}

export function normalizeJob(input: EnqueueInput, nowMs: number, maxPayloadBytes: number): NormalizedJob {
  if (input === null || typeof input !== 'object') throw new TypeError('enqueue needs { topic, payload }');
  const topic = checkTopic(input.topic);
  return {
    id: input.id === undefined ? randomUUID() : checkJobId(input.id),
    topic,
    payloadJson: payloadJson(input.payload, maxPayloadBytes),
    dedupeKey: input.dedupeKey === undefined ? null : checkDedupeKey(input.dedupeKey),
    runAtMs: input.runAt === undefined ? nowMs : runAtMs(input.runAt),
    maxAttempts: input.maxAttempts === undefined ? null : checkMaxAttempts(input.maxAttempts),
    nowMs,
  };
}

function checkJobId(id: unknown): string {
  if (typeof id !== 'string' || !jobIdPattern.test(id)) {
    throw new TypeError(
      `job id ${JSON.stringify(id)} must be 1–${maxJobIdLength} printable ASCII characters without spaces`,
    );
  }
  return id;
}

function checkDedupeKey(key: unknown): string {
  if (
    typeof key !== 'string' ||
    key.length === 0 ||
    key.length > maxDedupeKeyLength ||
    controlCharacter.test(key)
  ) {
    throw new TypeError(
      `dedupeKey must be 1–${maxDedupeKeyLength} characters without control characters, got ${JSON.stringify(key)}`,
    );
  }
  return key;
}

function payloadJson(payload: unknown, maxPayloadBytes: number): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch (error) {
    throw new TypeError(`the job payload must be JSON: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined)
    throw new TypeError('the job payload must be JSON (got undefined, a function or a symbol)');
  const bytes = Buffer.byteLength(text);
  if (bytes > maxPayloadBytes) {
    throw new TypeError(
      `the job payload is ${bytes} bytes of JSON, more than maxPayloadBytes (${maxPayloadBytes}): store the data in your own table and enqueue its id`,
    );
  }
  // PostgreSQL's jsonb cannot hold U+0000; refused on SQLite too, so a job moves between dialects.
  if (escapedNul.test(text))
    throw new TypeError('the job payload contains a NUL character (U+0000), which jsonb cannot hold');
  return text;
}

function runAtMs(runAt: Date | number): number {
  const ms = runAt instanceof Date ? runAt.getTime() : runAt;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`runAt must be a valid Date or epoch milliseconds ≥ 0, got ${String(runAt)}`);
  }
  return Math.round(ms);
}
