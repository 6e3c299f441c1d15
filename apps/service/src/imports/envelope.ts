// The import request's envelope, checked before the 202 so a request that cannot start an
// import changes nothing: its media type (415 otherwise), syntax (400), size (413, by the
// route's body limit) and shape (422). The orders themselves are checked one by one in the job.
import type { FastifyRequest } from 'fastify';
import { BadRequestError, type FieldError, ValidationError } from 'retrysafe/http';
import { maxImportOrders } from './settings.js';

export const ndjsonMediaType = 'application/x-ndjson';
const maxCallbackUrlLength = 2000;

export interface ImportEnvelope {
  orders: unknown[];
  callbackUrl: string | null;
}

/** One JSON value per line; blank lines (a trailing newline) are skipped. */
export function parseNdjson(
  _request: FastifyRequest,
  body: string,
  done: (error: Error | null, value?: unknown) => void,
) {
  const orders: unknown[] = [];
  const lines = body.split('\n');
  for (let line = 0; line < lines.length; line++) {
    const text = lines[line]!.trim();
    if (text === '') continue;
    try {
      orders.push(JSON.parse(text));
    } catch {
      done(
        new BadRequestError(`line ${line + 1} of the NDJSON body is not one JSON value`, 'invalid-ndjson'),
      );
      return;
    }
  }
  done(null, orders);
}

/**
 * The body as an import: a JSON array of orders (or NDJSON, parsed to one), or
 * `{ "orders": [...], "callbackUrl": "https://…" }` for a JSON body that names a callback.
 */
export function importEnvelope(body: unknown): ImportEnvelope {
  if (Array.isArray(body)) return { orders: checkCount(body, ''), callbackUrl: null };
  if (body === null || typeof body !== 'object')
    throw new ValidationError(
      [{ pointer: '', detail: 'must be an array of orders, or an object with orders (and callbackUrl)' }],
      'The body is not an import.',
    );
  const { orders, callbackUrl, ...rest } = body as Record<string, unknown>;
  const errors: FieldError[] = Object.keys(rest).map((key) => ({
    pointer: `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
    detail: 'is not a field of an import (orders, callbackUrl)',
  }));
  if (!Array.isArray(orders)) errors.push({ pointer: '/orders', detail: 'must be an array of orders' });
  const callback = callbackUrl === undefined ? null : checkCallbackUrl(callbackUrl, errors);
  if (errors.length > 0) throw new ValidationError(errors, 'The body is not an import.');
  return { orders: checkCount(orders as unknown[], '/orders'), callbackUrl: callback };
}

function checkCount(orders: unknown[], pointer: string): unknown[] {
  if (orders.length === 0 || orders.length > maxImportOrders)
    throw new ValidationError(
      [{ pointer, detail: `must hold 1 to ${maxImportOrders} orders, not ${orders.length}` }],
      'The import holds no orders or too many.',
    );
  return orders;
}

/** An absolute http(s) URL; only recorded here (delivery comes with webhooks). */
function checkCallbackUrl(value: unknown, errors: FieldError[]): string | null {
  const refuse = (detail: string) => {
    errors.push({ pointer: '/callbackUrl', detail });
    return null;
  };
  if (typeof value !== 'string') return refuse('must be a string');
  if (value.length > maxCallbackUrlLength)
    return refuse(`must be at most ${maxCallbackUrlLength} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse('must be an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return refuse('must be an http or https URL');
  if (url.username !== '' || url.password !== '') return refuse('must not carry credentials');
  return url.href;
}
