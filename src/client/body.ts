// Request bodies: validation with any Standard Schema validator before anything is sent, and
// encoding as JSON or as an HTML-form body (URLSearchParams, or a flat object with `form: true`).

import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { FieldError } from './result.js';

export interface EncodedBody {
  body: string | undefined;
  contentType: string | undefined;
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

export function encodeBody(value: unknown, form: boolean): EncodedBody {
  if (value === undefined) return { body: undefined, contentType: undefined };
  if (value instanceof URLSearchParams) {
    return { body: value.toString(), contentType: 'application/x-www-form-urlencoded' };
  }
  if (form) return { body: toForm(value).toString(), contentType: 'application/x-www-form-urlencoded' };
  const json = JSON.stringify(value);
  // JSON.stringify returns undefined for functions and symbols: a programmer error, not a request.
  if (json === undefined) throw new TypeError(`body cannot be sent as JSON: ${typeof value}`);
  return { body: json, contentType: 'application/json' };
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
