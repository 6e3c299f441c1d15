// Request bodies: validation with any Standard Schema validator before anything is sent, and
// encoding as JSON, as an HTML form (URLSearchParams, or a flat object with `form: true`), or as
// one of the bodies fetch sends natively (native-body.ts).

import type { StandardSchemaV1 } from '@standard-schema/spec';
import { encodeNativeBody, isNativeBody, type WireBody } from './native-body.js';
import type { FieldError } from './result.js';

export interface EncodedBody {
  body: WireBody | undefined;
  contentType: string | undefined;
  /** True when the body is a stream that can be sent only once. */
  streamed: boolean;
}

export interface EncodeOptions {
  /** Send a flat object as an HTML form. */
  form: boolean;
  /** A `content-type` the caller set: a string body is then sent as it is, not as JSON. */
  contentType: string | undefined;
  /** Whether the call may send the body more than once (retries, a 307). */
  mayRepeat: boolean;
}

/** Thrown for a body that has no faithful encoding; the caller turns it into `invalid_input`. */
export class UnsendableBodyError extends Error {
  override readonly name = 'UnsendableBodyError';
}

export type Validation = { ok: true; value: unknown } | { ok: false; fieldErrors: FieldError[] };

/** Runs the schema; its output (with defaults and transforms applied) is what gets sent. */
export async function validateInput(schema: StandardSchemaV1, value: unknown): Promise<Validation> {
  if (typeof schema?.['~standard']?.validate !== 'function') {
    throw new TypeError('schema must be a Standard Schema validator (zod, valibot, arktype, …)');
  }
  const result = await schema['~standard'].validate(value);
  if (result.issues === undefined) return { ok: true, value: result.value };
  return {
    ok: false,
    fieldErrors: result.issues.map((issue) => ({ pointer: toPointer(issue.path), detail: issue.message })),
  };
}

/** Standard Schema paths are keys or `{ key }` segments; the server speaks JSON Pointer, so we do too. */
function toPointer(path: StandardSchemaV1.Issue['path']): string {
  if (path === undefined) return '';
  return path
    .map((segment) => {
      const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
      return `/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`;
    })
    .join('');
}

/**
 * JSON by default; forms, fetch-native bodies (FormData, Blob, bytes, streams) and strings with
 * an explicit content type are sent as they are. Anything JSON would silently turn into `{}`
 * (a Map, a Set, a class instance) is refused instead of corrupted.
 */
export async function encodeBody(value: unknown, options: EncodeOptions): Promise<EncodedBody> {
  if (value === undefined) return { body: undefined, contentType: undefined, streamed: false };
  if (value instanceof URLSearchParams) {
    return { body: value.toString(), contentType: 'application/x-www-form-urlencoded', streamed: false };
  }
  if (isNativeBody(value)) return encodeNativeBody(value, options.contentType, options.mayRepeat);
  if (typeof value === 'string' && options.contentType !== undefined) {
    return { body: value, contentType: options.contentType, streamed: false };
  }
  if (options.form) {
    return {
      body: toForm(value).toString(),
      contentType: 'application/x-www-form-urlencoded',
      streamed: false,
    };
  }
  return { body: toJson(value), contentType: 'application/json', streamed: false };
}

/** JSON.stringify, but refusing values it would not round-trip (it applies `toJSON` first, so Dates pass). */
function toJson(value: unknown): string {
  const json = JSON.stringify(value, (_key, field: unknown) => {
    if (typeof field === 'bigint') throw new UnsendableBodyError('a bigint is not JSON; send it as a string');
    if (typeof field === 'object' && field !== null && !Array.isArray(field)) {
      const prototype = Object.getPrototypeOf(field) as object | null;
      if (prototype !== Object.prototype && prototype !== null) {
        const name = (field as object).constructor?.name ?? 'object';
        throw new UnsendableBodyError(
          `a ${name} is not JSON (it would be sent as {}); convert it to a plain object or array first`,
        );
      }
    }
    return field;
  });
  // JSON.stringify returns undefined for functions and symbols: a programmer error, not a request.
  if (json === undefined) throw new UnsendableBodyError(`a ${typeof value} cannot be sent as JSON`);
  return json;
}

/** Flat objects only: arrays become repeated keys (`interests=a&interests=b`), absent values are left out. */
function toForm(value: unknown): URLSearchParams {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError('form: true needs a flat object body');
  }
  const params = new URLSearchParams();
  for (const [name, field] of Object.entries(value)) {
    for (const item of Array.isArray(field) ? field : [field]) {
      if (item === undefined || item === null) continue;
      if (typeof item === 'object') {
        throw new TypeError(`form: true needs a flat object; field "${name}" holds an object`);
      }
      params.append(name, String(item));
    }
  }
  return params;
}
