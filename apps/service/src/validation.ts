// Schema validation settings: bodies are strict (no type coercion, every error reported, unknown
// fields rejected), while path and query strings are coerced, since they only ever hold text.
// Every part also refuses text that cannot be stored as it was sent (see storableTextIssues),
// and absurdly large values are reported by their first error only (maxEntriesForEveryError).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from 'fastify';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped once.
const addFormats = addFormatsModule.default;

/** Issues past this many are not looked for: the problem lists only the first ones anyway. */
const maxTextIssues = 50;

function makeAjv(coerceTypes: false | 'array', allErrors: boolean): Ajv {
  const ajv = new Ajv({
    allErrors,
    coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

/**
 * A value with an array or object of more entries than this (no schema here allows more than
 * 100) is checked up to its first error only. With every error collected, 1 MiB of `{}` items
 * made a million errors: about 2 s of CPU and a 40 MB answer for one request.
 */
export const maxEntriesForEveryError = 1000;

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

export function registerValidation(app: FastifyInstance): void {
  const bodies = { every: makeAjv(false, true), first: makeAjv(false, false) };
  const strings = { every: makeAjv('array', true), first: makeAjv('array', false) };
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? bodies : strings;
    return withStorableText(ajv.every.compile(schema), ajv.first.compile(schema));
  });
}

/** Runs the schema, then refuses unstorable text anywhere in the value, keys included. */
function withStorableText(everyError: ValidateFunction, firstError: ValidateFunction): Validator {
  const validator: Validator = (data) => {
    const oversized = largestContainer(data) > maxEntriesForEveryError;
    const validate = oversized ? firstError : everyError;
    const valid = validate(data);
    // An oversized value that already failed needs no second walk just to list more errors.
    const textIssues = valid || !oversized ? storableTextIssues(data) : [];
    const errors = [...(validate.errors ?? []), ...textIssues];
    validator.errors = errors.length > 0 ? errors : null;
    return valid && textIssues.length === 0;
  };
  return validator;
}

/** The most entries any array or object in `data` holds (iterative, like storableTextIssues). */
function largestContainer(data: unknown): number {
  let largest = 0;
  const pending: unknown[] = [data];
  while (pending.length > 0) {
    const value = pending.pop();
    if (value === null || typeof value !== 'object') continue;
    const items = Array.isArray(value) ? value : Object.values(value);
    largest = Math.max(largest, items.length);
    if (largest > maxEntriesForEveryError) return largest;
    for (const item of items) if (item !== null && typeof item === 'object') pending.push(item);
  }
  return largest;
}

/**
 * Strings the service could not store as sent: U+0000 (PostgreSQL's text refuses it, so the
 * write failed with a 500) and lone UTF-16 surrogates from JSON escapes such as "\ud800" (they
 * have no UTF-8 form: SQLite kept U+FFFD instead, so a GET no longer matched the 201 it
 * answered, nor its ETag). Walks without recursion, so a deeply nested body cannot overflow
 * the stack.
 */
export function storableTextIssues(data: unknown): ErrorObject[] {
  const issues: ErrorObject[] = [];
  const report = (at: PathStep | undefined, key: string | number | undefined, message: string) =>
    issues.push(textIssue(pointerOf(at, key), message));
  if (typeof data === 'string') {
    const reason = unstorableReason(data);
    if (reason) report(undefined, undefined, `must not contain ${reason}`);
    return issues;
  }
  // Containers only; each carries the step that reached it, so a pointer is built only for an issue.
  const pending: [container: object, at: PathStep | undefined][] = [];
  if (data !== null && typeof data === 'object') pending.push([data, undefined]);
  const visit = (item: unknown, at: PathStep | undefined, key: string | number) => {
    if (typeof item === 'string') {
      const reason = unstorableReason(item);
      if (reason) report(at, key, `must not contain ${reason}`);
    } else if (item !== null && typeof item === 'object') {
      pending.push([item, { parent: at, key }]);
    }
  };
  while (pending.length > 0 && issues.length < maxTextIssues) {
    const [container, at] = pending.pop()!;
    if (Array.isArray(container)) {
      for (let i = 0; i < container.length; i++) visit(container[i], at, i);
      continue;
    }
    for (const [key, item] of Object.entries(container)) {
      const keyReason = unstorableReason(key);
      if (keyReason) report(at, key, `has a field name that contains ${keyReason}`);
      else visit(item, at, key);
    }
  }
  return issues.slice(0, maxTextIssues);
}

interface PathStep {
  parent: PathStep | undefined;
  key: string | number;
}

function pointerOf(at: PathStep | undefined, key: string | number | undefined): string {
  const segments = key === undefined ? [] : [key];
  for (let step = at; step; step = step.parent) segments.push(step.key);
  return segments
    .reverse()
    .map((segment) => `/${escapePointer(String(segment))}`)
    .join('');
}

/** With the u flag a surrogate pair is one code point, so \p{Cs} finds only lone halves. */
const loneSurrogate = /\p{Cs}/u;

function unstorableReason(text: string): string | undefined {
  if (text.includes('\u0000')) return 'U+0000 (NUL)';
  if (loneSurrogate.test(text)) return 'a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

function textIssue(instancePath: string, message: string): ErrorObject {
  return { keyword: 'storableText', instancePath, schemaPath: '#', params: {}, message };
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * A preValidation hook that validates the path parameters before the route's own
 * preValidation hooks read the database with them (PUT /users/{id} decides its preconditions
 * before the body is validated, but an id must be valid before it is looked up).
 */
export function validateParamsFirst(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  const validate = request.getValidationFunction('params') as Validator | undefined;
  if (!validate || validate(request.params)) {
    done();
    return;
  }
  const error = new Error('The path parameters are not valid.') as FastifyError & {
    validation: ErrorObject[];
    validationContext: string;
  };
  error.statusCode = 400;
  error.validation = validate.errors ?? [];
  error.validationContext = 'params';
  done(error);
}
