// Each order of an import checked on its own, in the job: the same schema and text rules as
// POST /orders, reported as JSON Pointers into that order ("" is the order itself).
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FieldError } from 'retrysafe/http';
import type { OrderInput } from '../domain/orders.js';
import { orderInputSchema } from '../schemas.js';
import { storableTextIssues } from '../validation.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped once.
const addFormats = addFormatsModule.default;
/** An order's errors past this many are not listed (a hostile order could have thousands). */
const maxErrorsPerOrder = 20;

/**
 * An order holding a container of more entries than this is checked up to its first error:
 * with every error collected, an order of a million `{}` items would make a million errors.
 */
const maxEntriesForEveryError = 1000;

function compile(allErrors: boolean) {
  const ajv = new Ajv({ allErrors, coerceTypes: false, useDefaults: false, strict: false });
  addFormats(ajv);
  return ajv.compile(orderInputSchema);
}
const everyError = compile(true);
const firstError = compile(false);

export type OrderCheck = { ok: true; input: OrderInput } | { ok: false; errors: FieldError[] };

export function checkImportedOrder(value: unknown): OrderCheck {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, errors: [{ pointer: '', detail: 'must be an order object' }] };
  const validate = hasContainerOver(value, maxEntriesForEveryError) ? firstError : everyError;
  const valid = validate(value);
  const issues = [...(validate.errors ?? []), ...storableTextIssues(value)];
  if (valid && issues.length === 0) return { ok: true, input: value as OrderInput };
  return { ok: false, errors: issues.slice(0, maxErrorsPerOrder).map(fieldError) };
}

function fieldError(error: ErrorObject): FieldError {
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const child = params.missingProperty ?? params.additionalProperty;
  const pointer = child === undefined ? error.instancePath : `${error.instancePath}/${escapePointer(child)}`;
  return { pointer, detail: error.message ?? 'is not valid' };
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Whether any array or object inside `value` holds more than `bound` entries (no recursion). */
function hasContainerOver(value: object, bound: number): boolean {
  const pending: object[] = [value];
  while (pending.length > 0) {
    const container = pending.pop()!;
    const entries = Array.isArray(container) ? container : Object.values(container);
    if (entries.length > bound) return true;
    for (const entry of entries) if (entry !== null && typeof entry === 'object') pending.push(entry);
  }
  return false;
}
