// POST /orders/imports end to end, on a real service process over SQLite and over PostgreSQL:
// a 2,000-order import with 3% bad orders creates each good order exactly once and reports
// each bad one by index; the same key replays the same 202; `Prefer: wait` answers when the
// import ends; a cancel stops it between batches; another tenant sees none of it; and envelope
// errors (400/413/415/422) store nothing. Needs `npm run build` first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importBodyLimitBytes } from '../src/imports/settings.js';
import { rawHttp } from './helpers/raw-http.js';
import {
  type Api,
  api,
  type Backend,
  badIndexes,
  batchCommitted,
  cleanUp,
  expectedOrderIds,
  goodOrder,
  importInput,
  inputDropped,
  listedOrderIds,
  postImport,
  startOn,
  storedOrderCount,
  untilTerminal,
} from './imports-support.js';

afterAll(cleanUp);

describe.each<Backend>(['sqlite', 'postgres'])('bulk order imports on %s', (backend) => {
  let service: Awaited<ReturnType<typeof startOn>>;
  let asA: Api;
  let asB: Api;
  let finishedId = '';
  beforeAll(async () => {
    // A pause after each batch, so a cancel can land between batches.
    service = await startOn(backend, { RETRYSAFE_TEST_IMPORT_BATCH_PAUSE_MS: '200' });
    asA = api(service.url);
    asB = api(service.url, 'demo-writer-b');
  });

  it('imports 2,000 orders with 3% bad ones: each good order exactly once, each bad one reported by index', async () => {
    const input = importInput(2000);
    const accepted = await postImport(asA, input, `big-${backend}`);
    expect(accepted.status).toBe(202);
    const id: string = accepted.json.id;
    expect(accepted.headers.get('location')).toBe(`/operations/${id}`);
    expect(accepted.headers.get('operation-location')).toBe(`/operations/${id}`);
    expect(accepted.headers.get('retry-after')).toBe('1');
    expect(accepted.json).toMatchObject({ kind: 'orders.import', status: 'notStarted' });

    // The same key and body: the same 202 and operation, nothing started twice.
    const replay = await postImport(asA, input, `big-${backend}`);
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('operation-location')).toBe(`/operations/${id}`);
    expect(replay.text).toBe(accepted.text);

    const done = await untilTerminal(asA, id);
    expect(done.json).toMatchObject({
      status: 'succeeded',
      resourceLocation: `/orders/imports/${id}`,
      processed: 2000,
      total: 2000,
      percentComplete: 100,
    });
    expect(done.headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(done.headers.get('retry-after')).toBeNull();
    finishedId = id;

    const result = await asA(`/orders/imports/${id}`);
    expect(result.status).toBe(200);
    expect(result.json).toMatchObject({ id, status: 'succeeded', total: 2000, created: 1940, failed: 60 });
    expect(result.json.errors.map((error: { index: number }) => error.index)).toEqual(badIndexes(2000));
    const errorsAt = (index: number) =>
      result.json.errors.find((error: { index: number }) => error.index === index).errors;
    expect(errorsAt(0)).toContainEqual({
      pointer: '/currency',
      detail: "must have required property 'currency'",
    });
    expect(errorsAt(101)).toEqual([{ pointer: '/items/0/quantity', detail: 'must be >= 1' }]);
    expect(errorsAt(202)).toEqual([{ pointer: '', detail: 'must be an order object' }]);
    expect(errorsAt(301)).toEqual([{ pointer: '/colour', detail: 'must NOT have additional properties' }]);

    const listed = await listedOrderIds(asA, id);
    expect(listed).toHaveLength(1940);
    expect([...listed].sort()).toEqual(expectedOrderIds(id, 2000));
    expect(await storedOrderCount(backend, service.dbPath, 'a')).toBe(1940);
    expect(await inputDropped(backend, service.dbPath, id)).toBe(true);
    // Recorded as placed: an import charges nobody.
    const one = await asA(`/orders/${listed[5]}`);
    expect(one.json).toMatchObject({ payment: { status: 'placed', paidCents: 0 }, shipment: null });
  });

  it('answers a Prefer: wait monitor when the import ends, not when the wait runs out', async () => {
    const accepted = await postImport(asA, importInput(600), `wait-${backend}`);
    expect(accepted.status).toBe(202);
    // 60 s asked; the test's own timeout (30 s) would fail it if the answer waited that long.
    const answer = await asA(`/operations/${accepted.json.id}`, { headers: { prefer: 'wait=60' } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('preference-applied')).toBe('wait=60');
    expect(answer.json.status).toBe('succeeded');
    expect(answer.headers.get('retry-after')).toBeNull();
  }, 30_000);

  it('cancels an import while it runs: it stops between batches and keeps what it had imported', async () => {
    const accepted = await postImport(asA, importInput(2000), `cancel-${backend}`);
    const id: string = accepted.json.id;
    await batchCommitted(service, id, 0);
    const cancel = await asA(`/operations/${id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect(cancel.json).toMatchObject({ id, status: 'running', cancelRequested: true });
    const ended = await untilTerminal(asA, id);
    expect(ended.json.status).toBe('canceled');
    expect(ended.json).not.toHaveProperty('resourceLocation');

    const result = await asA(`/orders/imports/${id}`);
    expect(result.json.status).toBe('canceled');
    // Whole batches only (500 orders, 15 of them bad), and fewer than all of them.
    const listed = await listedOrderIds(asA, id);
    expect(listed.length).toBe(result.json.created);
    expect(result.json.created + result.json.failed).toBeGreaterThanOrEqual(500);
    expect(result.json.created + result.json.failed).toBeLessThan(2000);
    expect((result.json.created + result.json.failed) % 500).toBe(0);
    const expected = new Set(expectedOrderIds(id, 2000));
    expect(listed.every((orderId) => expected.has(orderId))).toBe(true);
    // A canceled import's input is not kept: it will never be read again.
    expect(await inputDropped(backend, service.dbPath, id)).toBe(true);

    // Asked again once canceled: 200 with the operation. A finished one cannot be canceled: 409.
    const again = await asA(`/operations/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(200);
    expect(again.json.status).toBe('canceled');
    const finished = await asA(`/operations/${finishedId}/cancel`, { method: 'POST' });
    expect(finished.status).toBe(409);
    expect(finished.json.type).toBe('urn:retrysafe:problem:operation-ended');
  });

  it("keeps another tenant's operations and imports out of sight (404, empty lists)", async () => {
    expect(finishedId).not.toBe('');
    expect((await asB(`/operations/${finishedId}`)).status).toBe(404);
    expect((await asB(`/operations/${finishedId}`, { headers: { prefer: 'wait=1' } })).status).toBe(404);
    expect((await asB(`/operations/${finishedId}/cancel`, { method: 'POST' })).status).toBe(404);
    expect((await asB(`/orders/imports/${finishedId}`)).status).toBe(404);
    expect((await asB(`/orders?importId=${finishedId}`)).json.data).toEqual([]);
    expect((await asB('/operations')).json.data).toEqual([]);
    const own = await asA('/operations?limit=100');
    expect(own.json.data.map((operation: { id: string }) => operation.id)).toContain(finishedId);
  });

  it('refuses envelope errors before the 202 and stores nothing: the same key then starts an import', async () => {
    const key = `envelope-${backend}`;
    const before = (await asA('/operations?limit=100')).json.data;
    const refused = [
      await postImport(asA, 'sku,quantity\na,1', key, { 'content-type': 'text/csv' }),
      await postImport(asA, '[{"items":', key),
      await postImport(asA, '{"items":[]}\n{not json', key, { 'content-type': 'application/x-ndjson' }),
      await postImport(asA, { orders: 'none' }, key),
      await postImport(asA, [], key),
      await postImport(
        asA,
        Array.from({ length: 10_001 }, () => ({})),
        key,
      ),
      await postImport(asA, { orders: importInput(1), callbackUrl: 'ftp://example.com/done' }, key),
    ];
    // A good import without a key: 400 (the key is required), and nothing starts.
    refused.push(await asA('/orders/imports', { method: 'POST', body: [goodOrder(0)] }));
    expect(refused.map((answer) => answer.status)).toEqual([415, 400, 400, 422, 422, 422, 422, 400]);
    for (const answer of refused)
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(refused[6]!.json.errors).toEqual([
      { pointer: '/callbackUrl', detail: 'must be an http or https URL' },
    ]);
    // Past 16 MiB: raw HTTP, which reads the early 413 before the server closes the connection.
    const tooLarge = await rawHttp(service.url, { bodyLimitBytes: importBodyLimitBytes }).send({
      method: 'POST',
      target: '/orders/imports',
      headers: [
        ['content-type', 'application/json'],
        ['idempotency-key', key],
      ],
      body: `[${' '.repeat(importBodyLimitBytes)}]`,
    });
    expect(tooLarge.answer?.status).toBe(413);
    expect(tooLarge.answer?.headers['content-type']).toContain('application/problem+json');
    expect((await asA('/operations?limit=100')).json.data).toEqual(before);

    // Nothing was stored under the key: it now starts a real import (NDJSON, with a good and a bad line).
    const ndjson = `${JSON.stringify(goodOrder(0))}\n{"currency":"EUR"}\n`;
    const accepted = await postImport(asA, ndjson, key, { 'content-type': 'application/x-ndjson' });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('idempotent-replayed')).toBeNull();
    const done = await untilTerminal(asA, accepted.json.id);
    expect(done.json.status).toBe('succeeded');
    const result = await asA(done.json.resourceLocation);
    expect(result.json).toMatchObject({ created: 1, failed: 1, errors: [{ index: 1 }] });
  }, 30_000);

  it('records a callbackUrl with the import (delivered by the webhooks issue, not here)', async () => {
    const accepted = await postImport(
      asA,
      { orders: [goodOrder(0), goodOrder(1)], callbackUrl: 'https://hooks.example.com/imports?x=1' },
      `callback-${backend}`,
    );
    expect(accepted.status).toBe(202);
    await untilTerminal(asA, accepted.json.id);
    const result = await asA(`/orders/imports/${accepted.json.id}`);
    expect(result.json).toMatchObject({
      created: 2,
      failed: 0,
      callbackUrl: 'https://hooks.example.com/imports?x=1',
    });
  });
});
