// Hostile text (issue 5): NUL, lone surrogates, BOMs and stray bytes in body fields, paths,
// query strings and header values. Storable text reads back byte for byte; the rest is a 4xx.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeExchange, percentEncode } from './helpers/raw-http.js';
import {
  bodyRequest,
  hostileService,
  isUnstorable,
  problemOf,
  unicodePlacement,
  unicodePlaces,
  unicodeTextArb,
  usernameArb,
} from './hostile-support.js';

const hostile = hostileService();

describe('hostile text (SQLite)', () => {
  it('unicode in body fields: NUL and lone surrogates are 422, everything else reads back byte for byte', async () => {
    const where = fc.constantFrom('bio', 'interests', 'note', 'sku', 'username');
    const encoding = fc.constantFrom('json', 'json-ascii', 'bom', 'form', 'invalid-utf8');
    await hostile.check(
      'unicode in bodies',
      fc.tuple(where, encoding, unicodeTextArb, usernameArb),
      300,
      async ([field, how, text, name]) => {
        const isOrder = field === 'note' || field === 'sku';
        const user: Record<string, unknown> = { username: name, email: `${name}@example.com` };
        if (field === 'bio') user.bio = text;
        if (field === 'interests') user.interests = [text];
        if (field === 'username') user.username = text;
        const order = {
          items: [{ sku: field === 'sku' ? text : 'sku', quantity: 1, unitPriceCents: 5 }],
          currency: 'EUR',
          ...(field === 'note' ? { note: text } : {}),
        };
        const doc = isOrder ? order : user;
        let body: Buffer;
        let contentType = 'application/json';
        let unstorable = isUnstorable(text);
        if (how === 'json') body = Buffer.from(JSON.stringify(doc));
        else if (how === 'json-ascii') {
          body = Buffer.from(
            JSON.stringify(doc).replace(
              /[^\x20-\x7e]/g,
              (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
            ),
          );
        } else if (how === 'bom') body = Buffer.from(`\ufeff${JSON.stringify(doc)}`);
        else if (how === 'invalid-utf8') {
          // Bytes that are not UTF-8 inside the last string: decoded as U+FFFD, so storable.
          const json = JSON.stringify(doc);
          const at = json.lastIndexOf('"');
          body = Buffer.concat([
            Buffer.from(json.slice(0, at)),
            Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff, 0xc0, 0xaf]),
            Buffer.from(json.slice(at)),
          ]);
          unstorable = false;
        } else {
          contentType = 'application/x-www-form-urlencoded';
          const pairs: [string, string][] = isOrder
            ? [
                ['items[0][sku]', order.items[0]!.sku],
                ['items[0][quantity]', '1'],
                ['items[0][unitPriceCents]', '5'],
                ['currency', 'EUR'],
                ...(field === 'note' ? [['note', text] as [string, string]] : []),
              ]
            : Object.entries(user).map(([k, v]) => [
                Array.isArray(v) ? `${k}[]` : k,
                String(Array.isArray(v) ? v[0] : v),
              ]);
          body = Buffer.from(pairs.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&'));
          // A lone surrogate cannot be UTF-8: its CESU-8 bytes fail to decode, and qs then keeps
          // the whole value percent-encoded, NUL and all, as plain (storable) text.
          unstorable = text.includes('\u0000') && !/\p{Cs}/u.test(text);
        }
        const sent = await hostile.send(
          bodyRequest(isOrder ? 'POST /orders' : 'POST /users', body, { contentType }),
        );
        const answer = hostile.expectAnswer(sent, [201, 409, 422]);
        if (unstorable) {
          expect(answer.status, describeExchange(sent)).toBe(422);
          if (how === 'json' || how === 'json-ascii') {
            const pointers = (problemOf(answer).errors ?? []).map((e) => e.pointer);
            expect(pointers.some((p) => p.startsWith(`/${field === 'sku' ? 'items/0/sku' : field}`))).toBe(
              true,
            );
          }
        }
        if (answer.status === 201) {
          // The representation read back is the one the 201 answered, and so is its ETag.
          const read = await hostile.send({ target: answer.headers.location! });
          expect(read.answer?.status).toBe(200);
          expect(read.answer?.body, describeExchange(sent)).toBe(answer.body);
          expect(read.answer?.headers.etag).toBe(answer.headers.etag);
        }
      },
    );
  });

  it('unicode and stray bytes in paths, query strings and header values: 4xx problem, never 5xx', async () => {
    const fixture = await hostile.createFixture();
    const place = fc.constantFrom(...unicodePlaces);
    const text = unicodeTextArb.filter((t) => t.length > 0);
    await hostile.check(
      'unicode in paths, queries and headers',
      fc.tuple(place, text),
      300,
      async ([where, value]) => {
        const { request, allowed } = unicodePlacement(where, value, fixture.id);
        hostile.expectAnswer(await hostile.send(request), allowed);
      },
    );
  });
});
