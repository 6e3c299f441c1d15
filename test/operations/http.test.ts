// The HTTP helpers of operations: the 202 and its replay through the real idempotency lifecycle
// on a SQLite file (rule 31), the monitor's strong ETag and Retry-After, the cancel's answers
// (rule 32), and `Prefer: wait=N` parsing (RFC 7240).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteJobQueue } from '../../src/effects/jobs/sqlite.js';
import { createLifecycle, type NeutralRequest } from '../../src/idempotency/lifecycle.js';
import {
  acceptedResponse,
  cancelResponse,
  maxPreferWaitSeconds,
  type Operation,
  operationEtag,
  operationJobId,
  operationLocation,
  operationRepresentation,
  operationResponse,
  parsePreferWait,
} from '../../src/operations/index.js';
import { createSqliteOperations } from '../../src/operations/sqlite.js';
import { createSqliteStore, createSqliteUnitOfWork } from '../../src/stores/sqlite.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-operations-http-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const createdAtMs = Date.UTC(2025, 0, 2, 3, 4, 5);

function operation(overrides: Partial<Operation> = {}): Operation {
  return {
    id: 'op-1',
    scope: 'tenant-a',
    kind: 'export',
    status: 'notStarted',
    cancelRequested: false,
    percentComplete: null,
    processed: null,
    total: null,
    error: null,
    resourceLocation: null,
    jobId: operationJobId('op-1'),
    version: 1,
    createdAtMs,
    updatedAtMs: createdAtMs,
    finishedAtMs: null,
    ...overrides,
  };
}

describe('a 202 that starts an operation', () => {
  it('points Location and Operation-Location at the operation, with Retry-After and the operation as body', () => {
    const accepted = acceptedResponse(operation(), { retryAfterSeconds: 3, basePath: '/v1/operations/' });
    expect(accepted.status).toBe(202);
    expect(accepted.headers).toEqual({
      location: '/v1/operations/op-1',
      'operation-location': '/v1/operations/op-1',
      'retry-after': '3',
      'content-type': 'application/json; charset=utf-8',
    });
    expect(JSON.parse(accepted.body)).toEqual({
      id: 'op-1',
      kind: 'export',
      status: 'notStarted',
      createdAt: '2025-01-02T03:04:05.000Z',
      lastUpdatedAt: '2025-01-02T03:04:05.000Z',
    });
    expect(operationLocation('op-1')).toBe('/operations/op-1');
  });

  it('replays the same 202 and operation id for a retried POST with the same key and body, creating it once', async () => {
    const unitOfWork = createSqliteUnitOfWork(join(directory, 'replay.db'));
    const jobs = createSqliteJobQueue({ database: unitOfWork });
    const operations = createSqliteOperations({ database: unitOfWork, jobs });
    const lifecycle = createLifecycle({ store: createSqliteStore({ database: unitOfWork }) });
    let runs = 0;
    const request: NeutralRequest = {
      method: 'POST',
      route: '/exports',
      path: '/exports',
      headers: { 'idempotency-key': 'export-1', 'content-type': 'application/json' },
      body: new TextEncoder().encode('{"format":"csv"}'),
      scope: 'tenant-a',
    };
    const post = () =>
      lifecycle.handle(request, { mode: 'required' }, (ctx) =>
        ctx.commit(async (tx) => {
          runs++;
          const created = await operations.create(tx, {
            scope: request.scope,
            kind: 'export',
            jobTopic: 'operation.export',
            jobPayload: { format: 'csv' },
          });
          return acceptedResponse(created);
        }),
      );
    const first = await post();
    const again = await post();
    expect(first.response.status).toBe(202);
    expect(again.outcome).toBe('replayed');
    expect(again.response.status).toBe(202);
    expect(again.response.headers).toMatchObject({
      location: first.response.headers.location,
      'operation-location': first.response.headers['operation-location'],
      'retry-after': '1',
    });
    expect(Buffer.from(again.response.body).equals(Buffer.from(first.response.body))).toBe(true);
    expect(runs).toBe(1);
    const page = await operations.list('tenant-a');
    expect(page.operations).toHaveLength(1);
    expect(first.response.headers['operation-location']).toBe(`/operations/${page.operations[0]!.id}`);
    expect((await jobs.stats(Date.now())).queued).toBe(1);
    await unitOfWork.close();
  });
});

describe('the operation monitor', () => {
  it('carries a strong ETag of its bytes, and Retry-After only until the operation ends', () => {
    const running = operationResponse(operation({ status: 'running', percentComplete: 40 }));
    expect(running.status).toBe(200);
    expect(running.headers.etag).toMatch(/^"[^"]+"$/);
    expect(running.headers.etag).toBe(operationEtag(operation({ status: 'running', percentComplete: 40 })));
    expect(running.headers['retry-after']).toBe('1');
    const later = operationResponse(operation({ status: 'running', percentComplete: 41 }));
    expect(later.headers.etag).not.toBe(running.headers.etag);
    const done = operationResponse(
      operation({ status: 'succeeded', resourceLocation: '/exports/1', finishedAtMs: createdAtMs }),
      { waitedSeconds: 5 },
    );
    expect(done.headers['retry-after']).toBeUndefined();
    expect(done.headers['preference-applied']).toBe('wait=5');
    expect(JSON.parse(done.body)).toMatchObject({ status: 'succeeded', resourceLocation: '/exports/1' });
  });

  it('shows error only when failed, resourceLocation only when succeeded, and a cancel under way', () => {
    expect(
      operationRepresentation(
        operation({ status: 'failed', error: { code: 'quota', message: 'over quota' }, finishedAtMs: 1 }),
      ),
    ).toMatchObject({ status: 'failed', error: { code: 'quota', message: 'over quota' } });
    const requested = operationRepresentation(operation({ status: 'running', cancelRequested: true }));
    expect(requested.cancelRequested).toBe(true);
    expect(requested).not.toHaveProperty('error');
    expect(requested).not.toHaveProperty('resourceLocation');
    expect(
      operationRepresentation(operation({ status: 'canceled', cancelRequested: true, finishedAtMs: 1 })),
    ).not.toHaveProperty('cancelRequested');
  });
});

describe('the cancel answer', () => {
  it('is 202 while it takes effect, 200 once canceled, 409 when ended otherwise, 404 when absent', () => {
    const running = operation({ status: 'running', cancelRequested: true });
    expect(cancelResponse({ outcome: 'cancel-requested', operation: running })).toMatchObject({
      status: 202,
      headers: { location: '/operations/op-1', 'retry-after': '1' },
    });
    const canceled = operation({ status: 'canceled', finishedAtMs: 1 });
    const done = cancelResponse({ outcome: 'canceled', operation: canceled });
    expect(done.status).toBe(200);
    expect(done.headers.etag).toBe(operationEtag(canceled));
    expect(cancelResponse({ outcome: 'terminal', operation: canceled }).status).toBe(200);
    const conflict = cancelResponse({
      outcome: 'terminal',
      operation: operation({ status: 'succeeded', resourceLocation: '/x', finishedAtMs: 1 }),
    });
    expect(conflict.status).toBe(409);
    expect(conflict.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(conflict.body)).toMatchObject({
      status: 409,
      type: 'urn:retrysafe:problem:operation-ended',
    });
    expect(cancelResponse({ outcome: 'not-found', operation: undefined }).status).toBe(404);
  });
});

describe('Prefer: wait', () => {
  it.each([
    ['wait=10', 10],
    ['respond-async, wait=5', 5],
    ['WAIT = 7', 7],
    ['wait="8"', 8],
    ['wait=3; foo=bar', 3],
    ['wait=1, wait=9', 1],
    [['return=minimal', 'wait=4'], 4],
    [`wait=${maxPreferWaitSeconds + 1000}`, maxPreferWaitSeconds],
  ] as const)('reads %j as %d seconds', (header, seconds) => {
    expect(parsePreferWait(header)).toBe(seconds);
  });

  it.each([undefined, '', 'respond-async', 'wait', 'wait=', 'wait=-1', 'wait=1.5', 'wait=abc', 'waited=3'])(
    'ignores %j',
    (header) => {
      expect(parsePreferWait(header)).toBeUndefined();
    },
  );

  it('caps at the given maximum', () => {
    expect(parsePreferWait('wait=30', 10)).toBe(10);
  });
});
