// Regression: a client that hangs up while an async onSend hook still holds an idempotent
// route's answer made the adapter send that answer a second time (Fastify resolves the reply
// on a premature close while `reply.sent` is still false), running onSend again. Real server
// on loopback, a real socket destroyed mid-answer.
import { connect } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { idempotency } from '../../src/adapters/fastify.js';
import { createMemoryStore } from '../../src/stores/memory.js';

const apps: ReturnType<typeof Fastify>[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

describe('fastify adapter: a client hanging up during onSend', () => {
  it('sends the committed answer once (onSend runs once per request)', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(idempotency, { store: createMemoryStore(), scope: () => 'tenant' });
    let onSendRuns = 0;
    let hungUp!: () => void;
    const clientGone = new Promise<void>((resolve) => {
      hungUp = resolve;
    });
    app.addHook('onSend', async (_request, _reply, payload) => {
      onSendRuns++;
      // Hold the answer until the client has gone.
      if (onSendRuns === 1) await clientGone;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return payload;
    });
    app.post('/orders', { config: { idempotency: 'required' } }, async (_request, reply) =>
      reply.idempotent(async () => ({ status: 201, body: { ok: true } })),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };

    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const body = '{"n":1}';
    socket.write(
      `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: k1\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    // Hang up once the answer is inside onSend.
    while (onSendRuns === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    hungUp();
    // Give a second send every chance to happen.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(onSendRuns).toBe(1);
  });
});
