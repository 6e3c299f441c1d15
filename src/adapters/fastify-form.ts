// HTML-form bodies for Fastify: parses application/x-www-form-urlencoded with qs (bracket
// notation for nested fields), then coerces the strings by the route's JSON Schema, so a form
// and the equivalent JSON validate — and fingerprint — as the same request.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { asFastifyPlugin } from './fastify-plugin-meta.js';
import { rememberRawBody } from './fastify-raw-body.js';

export interface FormBodiesOptions {
  /** Most array items a form may carry (`items[99][sku]`). Default 100. */
  arrayLimit?: number;
}

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
};

const formContentType = 'application/x-www-form-urlencoded';

async function formBodiesPlugin(fastify: FastifyInstance, options: FormBodiesOptions): Promise<void> {
  const arrayLimit = options.arrayLimit ?? 100;
  const qs = await loadQs();
  fastify.addContentTypeParser(formContentType, { parseAs: 'buffer' }, (request, body, done) => {
    rememberRawBody(request, body as Buffer);
    const text = (body as Buffer).toString('utf8');
    done(null, qs.parse(text, { depth: 5, arrayLimit, parameterLimit: 1000, allowDots: false }));
  });
  fastify.addHook('preValidation', async (request: FastifyRequest) => {
    // Media types are case-insensitive (RFC 9110 §8.3.1), as Fastify's parser lookup is.
    if (!request.headers['content-type']?.toLowerCase().startsWith(formContentType)) return;
    const schema = request.routeOptions.schema?.body as JsonSchema | undefined;
    if (schema) request.body = coerceFormValue(request.body, schema);
  });
}

/**
 * Form fields arrive as strings: turns integer/number/boolean strings into their types,
 * a lone value into a one-item array where the schema wants an array, and drops empty
 * strings for fields that are not strings (an empty form input means "not given").
 * Values that do not convert are left for the validator to reject with a clear pointer.
 */
export function coerceFormValue(value: unknown, schema: JsonSchema): unknown {
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type === 'array') {
    const list = Array.isArray(value) ? value : isPlainObject(value) ? Object.values(value) : [value];
    return list.map((item) => (schema.items ? coerceFormValue(item, schema.items) : item));
  }
  if (type === 'object' && isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const itemSchema = schema.properties?.[key];
      const coerced = itemSchema ? coerceFormValue(item, itemSchema) : item;
      if (coerced !== undefined) out[key] = coerced;
    }
    return out;
  }
  if (typeof value !== 'string') return value;
  if (value === '' && type !== 'string') return undefined;
  if ((type === 'integer' && /^-?\d+$/.test(value)) || (type === 'number' && /^-?\d+(\.\d+)?$/.test(value))) {
    return Number(value);
  }
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** qs is an optional peer: only apps that take HTML forms install it. */
async function loadQs(): Promise<typeof import('qs')> {
  try {
    return (await import('qs')).default;
  } catch (cause) {
    throw new Error('formBodies needs the qs package: npm install qs', { cause });
  }
}

export const formBodies = asFastifyPlugin(formBodiesPlugin, 'retrysafe-form-bodies');
