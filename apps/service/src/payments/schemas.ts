// JSON Schemas of the simulator's requests. Bodies are strict (no coercion, unknown fields
// refused), as in the reference service: a malformed charge is refused before anything runs.

/** Largest amount one charge or refund may move, in minor units (10 million in a 2-decimal currency). */
export const maxAmount = 1_000_000_000;
export const maxReferenceLength = 200;
/** Longest charge or refund id accepted in a path or body; ids issued are 39 characters. */
export const maxIdLength = 64;

const amount = { type: 'integer', minimum: 1, maximum: maxAmount } as const;
const reference = { type: 'string', minLength: 1, maxLength: maxReferenceLength } as const;

export const chargeInputSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['amount', 'currency', 'reference'],
  properties: { amount, currency: { type: 'string', pattern: '^[A-Z]{3}$' }, reference },
} as const;

export const refundInputSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['charge', 'amount', 'reference'],
  properties: { charge: { type: 'string', minLength: 1, maxLength: maxIdLength }, amount, reference },
} as const;

export const idParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: maxIdLength } },
} as const;

export const chargeListQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reference,
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 100 },
    cursor: { type: 'string', maxLength: 200 },
  },
} as const;

const rate = { type: 'number', minimum: 0, maximum: 1 } as const;

/** `POST /_faults`: the fields given replace the current ones. */
export const faultsInputSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    failRate: rate,
    resetAfterChargeRate: rate,
    slowRate: rate,
    slowMs: { type: 'integer', minimum: 0, maximum: 120_000 },
    seed: { type: 'integer', minimum: 0, maximum: 4_294_967_295 },
  },
} as const;
