// Hostile text on PostgreSQL (issue 5): its text and jsonb refuse U+0000 and lone surrogates,
// so such input in a body, a path id or a query must be a 4xx problem there, never a 500.
// Needs the local PostgreSQL of helpers/postgres.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { percentEncode, type RawRequest } from './helpers/raw-http.js';
import {
  type BodyRoute,
  bodyRequest,
  hostileService,
  isUnstorable,
  unicodeTextArb,
} from './hostile-support.js';

const hostile = hostileService({ postgres: true });

describe('hostile text against the reference service on PostgreSQL', () => {
  // Regression: PostgreSQL's text and jsonb refuse U+0000 and lone surrogates, so such a body
  // or path id was a 500 there (and the same body was silently altered on SQLite).
  it('NUL and lone surrogates in bodies, ids and queries are 4xx problems, not 500s', async () => {
    const bad = fc
      .tuple(unicodeTextArb, fc.constantFrom('\u0000', '\ud800', '\udfff'), fc.nat())
      .map(([text, char, at]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + char + text.slice(i);
      })
      // An inserted half can complete a neighbouring one into a valid pair.
      .filter(isUnstorable);
    const place = fc.constantFrom(
      'bio',
      'interests',
      'username',
      'note',
      'sku',
      'user id',
      'put id',
      'order id',
      'cursor',
    );
    await hostile.check('PostgreSQL: unstorable text', fc.tuple(place, bad), 150, async ([where, text]) => {
      let request: RawRequest;
      let allowed = [400, 404, 412, 428];
      if (where === 'user id') request = { target: `/users/${percentEncode(text)}` };
      else if (where === 'order id') request = { target: `/orders/${percentEncode(text)}` };
      else if (where === 'put id') {
        request = {
          method: 'PUT',
          target: `/users/${percentEncode(text)}`,
          headers: [
            ['Content-Type', 'application/json'],
            ['If-None-Match', '*'],
          ],
          body: '{"username":"pg_put","email":"p@example.com"}',
        };
      } else if (where === 'cursor') request = { target: `/orders?cursor=${percentEncode(text)}` };
      else {
        allowed = [422];
        const body =
          where === 'note' || where === 'sku'
            ? {
                items: [{ sku: where === 'sku' ? text : 's', quantity: 1, unitPriceCents: 1 }],
                currency: 'EUR',
                ...(where === 'note' ? { note: text } : {}),
              }
            : {
                username: where === 'username' ? text : 'pg_user',
                email: 'p@example.com',
                ...(where === 'bio' ? { bio: text } : {}),
                ...(where === 'interests' ? { interests: [text] } : {}),
              };
        const route: BodyRoute = where === 'note' || where === 'sku' ? 'POST /orders' : 'POST /users';
        request = bodyRequest(route, JSON.stringify(body));
      }
      hostile.expectAnswer(await hostile.send(request), allowed);
    });
    await hostile.expectServiceUp();
    const counts = await hostile.postgres!.pool.query(
      "SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM orders)::int AS orders, (SELECT count(*) FROM retrysafe_idempotency WHERE state = 'claimed')::int AS claimed",
    );
    expect(counts.rows[0]).toEqual({ users: 0, orders: 0, claimed: 0 });
    expect(hostile.service.logRecords().filter((record) => Number(record.level) >= 50)).toEqual([]);
  });
});
