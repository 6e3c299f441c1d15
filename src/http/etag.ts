// Strong entity tags (RFC 9110 §8.8.3) and parsing of If-Match / If-None-Match lists.
import { createHash } from 'node:crypto';

/** A strong ETag for a representation: quoted, derived from its bytes, so equal bytes ⇔ equal tag. */
export function strongEtag(representation: string | Uint8Array): string {
  return `"${createHash('sha256').update(representation).digest('base64url').slice(0, 27)}"`;
}

export interface EntityTag {
  weak: boolean;
  /** The opaque tag including its quotes, e.g. `"abc"`. */
  tag: string;
}

export type EntityTagCondition = { any: true } | { any: false; tags: EntityTag[] };

/**
 * Parses an If-Match or If-None-Match field value: `*` or a comma-separated list of
 * entity tags. Returns undefined for a malformed value (callers treat it as not matching).
 */
export function parseEntityTagList(value: string): EntityTagCondition | undefined {
  const trimmed = value.trim();
  if (trimmed === '*') return { any: true };
  const tags: EntityTag[] = [];
  const pattern = /\s*(W\/)?("[\x21\x23-\x7E\x80-\xFF]*")\s*(,|$)/y;
  let index = 0;
  while (index < trimmed.length) {
    pattern.lastIndex = index;
    const match = pattern.exec(trimmed);
    if (!match) return undefined;
    tags.push({ weak: match[1] !== undefined, tag: match[2]! });
    index = pattern.lastIndex;
  }
  return tags.length > 0 ? { any: false, tags } : undefined;
}

/** Strong comparison (If-Match): both tags must be strong and identical. */
export function strongMatch(condition: EntityTagCondition, current: string): boolean {
  if (condition.any) return true;
  return condition.tags.some((t) => !t.weak && t.tag === current);
}

/** Weak comparison (If-None-Match): opaque tags equal, weakness ignored. */
export function weakMatch(condition: EntityTagCondition, current: string): boolean {
  if (condition.any) return true;
  const bare = current.startsWith('W/') ? current.slice(2) : current;
  return condition.tags.some((t) => t.tag === bare);
}
