// Unit tests for entity tags (RFC 9110 §8.8.3, §13.1.1–13.1.2): strong ETags from bytes, parsing
// of If-Match / If-None-Match lists, and strong vs weak comparison.
import { describe, expect, it } from 'vitest';
import { type EntityTagCondition, parseEntityTagList, strongEtag, strongMatch, weakMatch } from './etag.js';

function tags(value: string): EntityTagCondition {
  const parsed = parseEntityTagList(value);
  if (parsed === undefined) throw new Error(`expected ${value} to parse`);
  return parsed;
}

describe('strongEtag', () => {
  it('is a quoted strong tag that is equal for equal bytes and different for different bytes', () => {
    const tag = strongEtag('{"a":1}');
    expect(tag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(strongEtag(new TextEncoder().encode('{"a":1}'))).toBe(tag);
    expect(strongEtag('{"a":2}')).not.toBe(tag);
  });
});

describe('parseEntityTagList', () => {
  it('parses * as "any"', () => {
    expect(parseEntityTagList('*')).toEqual({ any: true });
    expect(parseEntityTagList('  *  ')).toEqual({ any: true });
  });

  it('parses one strong tag, keeping its quotes', () => {
    expect(parseEntityTagList('"abc"')).toEqual({ any: false, tags: [{ weak: false, tag: '"abc"' }] });
  });

  it('parses a weak tag', () => {
    expect(parseEntityTagList('W/"abc"')).toEqual({ any: false, tags: [{ weak: true, tag: '"abc"' }] });
  });

  it('parses a list with mixed strength and optional white space', () => {
    expect(parseEntityTagList(' "a" ,W/"b",  "c"')).toEqual({
      any: false,
      tags: [
        { weak: false, tag: '"a"' },
        { weak: true, tag: '"b"' },
        { weak: false, tag: '"c"' },
      ],
    });
  });

  it('accepts the empty opaque tag ""', () => {
    expect(parseEntityTagList('""')).toEqual({ any: false, tags: [{ weak: false, tag: '""' }] });
  });

  it.each([
    ['an unquoted tag', 'abc'],
    ['an empty value', ''],
    ['white space only', '   '],
    ['an unterminated quote', '"abc'],
    ['two tags without a comma', '"a" "b"'],
    ['* inside a list', '"a", *'],
    ['a lower-case weak prefix', 'w/"a"'],
    ['a quote inside the tag', '"a"b"'],
    ['a space inside the tag', '"a b"'],
    ['garbage after a tag', '"a"x'],
  ])('returns undefined for %s', (_name, value) => {
    expect(parseEntityTagList(value)).toBeUndefined();
  });
});

describe('strongMatch (If-Match)', () => {
  it('matches * against any current tag', () => {
    expect(strongMatch(tags('*'), '"x"')).toBe(true);
  });

  it('matches an identical strong tag anywhere in the list', () => {
    expect(strongMatch(tags('"x"'), '"x"')).toBe(true);
    expect(strongMatch(tags('"a", "b", "x"'), '"x"')).toBe(true);
  });

  it('does not match a different tag', () => {
    expect(strongMatch(tags('"a", "b"'), '"x"')).toBe(false);
  });

  it('never matches a weak tag, even with the same opaque value', () => {
    expect(strongMatch(tags('W/"x"'), '"x"')).toBe(false);
  });

  it('is case-sensitive in the opaque tag', () => {
    expect(strongMatch(tags('"X"'), '"x"')).toBe(false);
  });
});

describe('weakMatch (If-None-Match)', () => {
  it('matches * against any current tag', () => {
    expect(weakMatch(tags('*'), '"x"')).toBe(true);
  });

  it('ignores weakness on either side', () => {
    expect(weakMatch(tags('W/"x"'), '"x"')).toBe(true);
    expect(weakMatch(tags('"x"'), 'W/"x"')).toBe(true);
    expect(weakMatch(tags('W/"x"'), 'W/"x"')).toBe(true);
  });

  it('matches any member of a list, and nothing else', () => {
    expect(weakMatch(tags('"a", W/"x"'), '"x"')).toBe(true);
    expect(weakMatch(tags('"a", W/"b"'), '"x"')).toBe(false);
  });
});
