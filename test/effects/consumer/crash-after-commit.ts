// A consumer process that dies by SIGKILL right after its first event committed and before the
// ack leaves: the one moment where only the ledger keeps the redelivery from running twice.
// Run by the crash tests: `node … crash-after-commit.ts '<json settings>'`.
import { connect as connectRabbit } from 'amqplib';
import { connect as connectNats } from 'nats';
import type { ConsumerLedger } from '../../../src/effects/consumer/ledger.js';
import { consumeNats } from '../../../src/effects/consumer/nats.js';
import { consumeRabbit } from '../../../src/effects/consumer/rabbitmq.js';
import { createSqliteConsumerLedger } from '../../../src/effects/consumer/sqlite.js';
import { createSqliteUnitOfWork, type SqliteDatabase } from '../../../src/stores/sqlite/unit-of-work.js';

interface Settings {
  broker: 'nats' | 'rabbitmq';
  databasePath: string;
  effectsTable: string;
  consumer: string;
  port: number;
  stream?: string;
  durable?: string;
  ackWaitMs?: number;
  queue?: string;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as Settings;
const unitOfWork = createSqliteUnitOfWork(settings.databasePath);
const ledger = createSqliteConsumerLedger({ database: unitOfWork, consumer: settings.consumer });

const dyingLedger: ConsumerLedger<SqliteDatabase> = {
  consumer: ledger.consumer,
  reap: (options) => ledger.reap(options),
  async processOnce(eventId, work) {
    const outcome = await ledger.processOnce(eventId, work);
    // Committed; the glue would ack next. Die before it can.
    if (outcome.processed) process.kill(process.pid, 'SIGKILL');
    return outcome;
  },
};

const handle = (event: { id: string }, tx: SqliteDatabase) => {
  tx.prepare(`INSERT INTO ${settings.effectsTable} (event_id) VALUES (?)`).run(event.id);
};
const signal = new AbortController().signal;

if (settings.broker === 'nats') {
  const connection = await connectNats({ servers: `127.0.0.1:${settings.port}` });
  await consumeNats({
    connection,
    stream: settings.stream!,
    durable: settings.durable!,
    ackWaitMs: settings.ackWaitMs!,
    ledger: dyingLedger,
    handle,
    signal,
  });
} else {
  const connection = await connectRabbit(`amqp://guest:guest@127.0.0.1:${settings.port}`);
  await consumeRabbit({ connection, queue: settings.queue!, ledger: dyingLedger, handle, signal });
}
