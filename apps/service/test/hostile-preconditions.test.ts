// Hostile conditional requests (issue 5): malformed If-Match and If-None-Match lists on every
// conditional route are 412 or 428 (or 200/304 on a read), and the user never changes.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Exchange } from './helpers/raw-http.js';
import { bodyRequest, hostileService } from './hostile-support.js';

const hostile = hostileService();

describe('hostile conditional requests (SQLite)', () => {
  it('malformed If-Match / If-None-Match lists: 412 or 428, and the user never changes', async () => {
    const fixture = await hostile.createFixture();
    const tag = fc.oneof(
      fc.string({ maxLength: 12 }).map((t) => `"${t}"`),
      fc.string({ maxLength: 12 }).map((t) => `W/"${t}"`),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('*', 'W/', '"', '""', 'W/""', '"a" "b"', '"a",,"b"', ',', 'W/ "a"', 'w/"a"'),
      fc.integer({ min: 0x80, max: 0xff }).map((c) => `"${String.fromCharCode(c)}"`),
    );
    const list = fc.oneof(
      fc
        .array(tag, { minLength: 1, maxLength: 6 })
        .chain((tags) =>
          fc.constantFrom(
            tags.join(', '),
            tags.join(','),
            tags.join(' '),
            `${tags.join(', ')},`,
            ` ${tags.join(' ,\t')}`,
          ),
        ),
      fc.integer({ min: 50, max: 900 }).map((n) => Array.from({ length: n }, (_, i) => `"t${i}"`).join(', ')),
      // The current ETag, but weak, unquoted, or inside a broken list: still no strong match.
      fc
        .constantFrom('weak', 'bare', 'broken')
        .map((how) =>
          how === 'weak'
            ? `W/${fixture.etag}`
            : how === 'bare'
              ? fixture.etag.slice(1, -1)
              : `${fixture.etag} x`,
        ),
    );
    const usable = list.filter(
      (v) => v.trim() !== '*' && !v.split(',').some((t) => t.trim() === fixture.etag),
    );
    const target = fc.constantFrom(
      'PUT if-match',
      'DELETE if-match',
      'PUT if-none-match',
      'GET if-none-match',
      'PUT missing',
    );
    await hostile.check('If-Match / If-None-Match', fc.tuple(target, usable), 300, async ([how, value]) => {
      const body = JSON.stringify({ username: fixture.username, email: 'changed@example.com' });
      let sent: Exchange;
      if (how === 'PUT if-match') {
        sent = await hostile.send(bodyRequest('PUT /users/{fixture}', body, { fixture, ifMatch: value }));
        hostile.expectAnswer(sent, [412]);
      } else if (how === 'DELETE if-match') {
        sent = await hostile.send({
          method: 'DELETE',
          target: `/users/${fixture.id}`,
          headers: [['If-Match', value]],
        });
        hostile.expectAnswer(sent, [412]);
      } else if (how === 'PUT if-none-match') {
        const request = bodyRequest('PUT /users/{fixture}', body, { fixture });
        sent = await hostile.send({
          ...request,
          headers: [
            ['Content-Type', 'application/json'],
            ['If-None-Match', value],
          ],
        });
        hostile.expectAnswer(sent, [412, 428]);
      } else if (how === 'GET if-none-match') {
        // If-None-Match compares weakly: W/ plus the current tag is a match (304), all else 200.
        sent = await hostile.send({ target: `/users/${fixture.id}`, headers: [['If-None-Match', value]] });
        const answer = hostile.expectAnswer(sent, value === `W/${fixture.etag}` ? [304] : [200]);
        if (answer.status === 200) expect(answer.body).toBe(fixture.text);
      } else {
        const missing = randomUUID();
        sent = await hostile.send({
          ...bodyRequest('PUT /users/{fixture}', body, { fixture }),
          target: `/users/${missing}`,
          headers: [
            ['Content-Type', 'application/json'],
            ['If-Match', value],
          ],
        });
        hostile.expectAnswer(sent, [412]);
      }
    });
    const read = await hostile.send({ target: `/users/${fixture.id}` });
    expect(read.answer?.body).toBe(fixture.text);
    expect(read.answer?.headers.etag).toBe(fixture.etag);
  });
});
