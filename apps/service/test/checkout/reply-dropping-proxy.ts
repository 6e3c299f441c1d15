// A loopback TCP proxy between the service and a broker that can drop the broker's replies while
// still forwarding what the service sends: publishes reach the broker and are stored, but their
// acknowledgements (NATS PubAck, RabbitMQ confirm) never come back. The relay is then left with
// events that are published yet not completed: the state a crash after a publish leaves.
import { createConnection, createServer, type Socket } from 'node:net';

export interface ReplyDroppingProxy {
  port: number;
  /** From now on, nothing the broker sends reaches the service. */
  dropReplies(): void;
  close(): Promise<void>;
}

export async function startReplyDroppingProxy(target: {
  host: string;
  port: number;
}): Promise<ReplyDroppingProxy> {
  let dropping = false;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    track(client);
    const upstream = createConnection(target);
    track(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!dropping) client.write(chunk);
    });
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP port');
  return {
    port: address.port,
    dropReplies() {
      dropping = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
