// Conditional requests for writes (RFC 9110 §13.2.2, RFC 6585 §3): decides 412 and 428
// once, so every route applies If-Match / If-None-Match in the same order.
import { parseEntityTagList, strongMatch, weakMatch } from './etag.js';
import { PreconditionFailedError, PreconditionRequiredError } from './problem.js';

export interface WritePreconditionInput {
  /** Raw If-Match header, if sent. */
  ifMatch: string | undefined;
  /** Raw If-None-Match header, if sent. */
  ifNoneMatch: string | undefined;
  /** The current strong ETag, or undefined when the resource does not exist. */
  currentEtag: string | undefined;
  /** Human name for messages, e.g. "User 123". */
  resource: string;
  /** When true, a write to an existing resource without If-Match is 428. */
  requireIfMatch: boolean;
}

/** What the write may do once its preconditions hold. */
export type WriteIntent = 'replace' | 'create';

/**
 * Evaluates write preconditions in RFC order: If-Match first, then If-None-Match.
 * Throws 412 or 428; returns whether the write replaces an existing resource or creates it.
 * Existence (404) is the caller's to decide before calling, except for create-by-PUT.
 */
export function evaluateWritePreconditions(input: WritePreconditionInput): WriteIntent {
  const { ifMatch, ifNoneMatch, currentEtag, resource } = input;
  if (ifMatch !== undefined) {
    const condition = parseEntityTagList(ifMatch);
    if (currentEtag === undefined) {
      throw new PreconditionFailedError(`${resource} does not exist, so If-Match cannot match.`);
    }
    if (condition === undefined || !strongMatch(condition, currentEtag)) {
      throw new PreconditionFailedError(
        `${resource} was changed by someone else (its ETag is ${currentEtag}, If-Match was ${ifMatch}): reload it and try again.`,
      );
    }
  }
  if (ifNoneMatch !== undefined) {
    const condition = parseEntityTagList(ifNoneMatch);
    if (condition === undefined) {
      throw new PreconditionFailedError(`If-None-Match ${ifNoneMatch} is not a valid entity-tag list.`);
    }
    if (currentEtag !== undefined && weakMatch(condition, currentEtag)) {
      throw new PreconditionFailedError(`${resource} already exists.`);
    }
    if (currentEtag === undefined) return 'create';
  }
  if (currentEtag !== undefined && ifMatch === undefined && input.requireIfMatch) {
    throw new PreconditionRequiredError(
      `Changing ${resource} requires If-Match with its current ETag: GET it, then send If-Match: <ETag>.`,
    );
  }
  return currentEtag === undefined ? 'create' : 'replace';
}
