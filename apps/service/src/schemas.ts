// JSON Schemas of the reference service: Fastify validates bodies with them and the OpenAPI
// document is generated from them, so the contract and the docs cannot disagree.

export const userInputSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['username', 'email'],
  properties: {
    username: {
      type: 'string',
      minLength: 3,
      maxLength: 32,
      pattern: '^[a-z0-9_]+$',
      description: '3–32 characters of a–z, 0–9 and _; unique within the tenant.',
    },
    email: { type: 'string', format: 'email', maxLength: 254 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    bio: { type: 'string', maxLength: 2000 },
    interests: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 64 } },
  },
} as const;

/** A PUT body may echo the read-only fields of a representation it got from GET. */
export const userReplaceSchema = {
  ...userInputSchema,
  properties: {
    ...userInputSchema.properties,
    id: { type: 'string', readOnly: true, description: 'Ignored unless it differs from the path id (422).' },
    version: { type: 'integer', minimum: 1, description: 'If sent and not current: 409 stale-version.' },
    createdAt: { type: 'string', readOnly: true },
    updatedAt: { type: 'string', readOnly: true },
  },
} as const;

export const userSchema = {
  type: 'object',
  required: ['id', 'username', 'email', 'interests', 'version', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    email: { type: 'string' },
    age: { type: 'integer' },
    bio: { type: 'string' },
    interests: { type: 'array', items: { type: 'string' } },
    version: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const orderInputSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['items', 'currency'],
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['sku', 'quantity', 'unitPriceCents'],
        properties: {
          sku: { type: 'string', minLength: 1, maxLength: 64 },
          quantity: { type: 'integer', minimum: 1, maximum: 10_000 },
          unitPriceCents: { type: 'integer', minimum: 0, maximum: 100_000_000 },
        },
      },
    },
    currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217 code, e.g. EUR.' },
    note: { type: 'string', maxLength: 500 },
  },
} as const;

export const orderSchema = {
  type: 'object',
  required: ['id', 'items', 'currency', 'totalCents', 'createdAt'],
  properties: {
    id: { type: 'string' },
    items: orderInputSchema.properties.items,
    currency: { type: 'string' },
    note: { type: 'string' },
    totalCents: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    version: { type: 'integer', minimum: 1 },
    payment: {
      type: 'object',
      required: ['status', 'paidCents'],
      properties: {
        status: {
          type: 'string',
          enum: ['pending', 'paid', 'placed'],
          description:
            'pending: placed, charge not finished (the completer finishes it); paid: charged; placed: from before checkouts.',
        },
        paidCents: { type: 'integer' },
        chargeId: { type: 'string' },
        paidAt: { type: 'string', format: 'date-time' },
      },
    },
    shipment: {
      type: ['object', 'null'],
      properties: { status: { type: 'string', enum: ['pending', 'shipped'] } },
    },
    pendingChange: {
      type: 'object',
      description: 'Present while a replacement (PUT) is moving money: the version it will make.',
      properties: { version: { type: 'integer' } },
    },
  },
} as const;

export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { pointer: { type: 'string' }, detail: { type: 'string' } },
      },
    },
  },
} as const;

export const idParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64 } },
} as const;

export const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    cursor: { type: 'string', maxLength: 200 },
  },
} as const;

export function listSchema(item: object) {
  return {
    type: 'object',
    required: ['data', 'nextCursor'],
    properties: { data: { type: 'array', items: item }, nextCursor: { type: ['string', 'null'] } },
  };
}

/** Response map for OpenAPI: every error is problem+json. */
export function problemResponses(...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const status of statuses) {
    out[status] = {
      description: 'Problem details (RFC 9457)',
      content: { 'application/problem+json': { schema: problemSchema } },
    };
  }
  return out;
}
