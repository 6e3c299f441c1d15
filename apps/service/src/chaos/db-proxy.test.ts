import { describe, expect, it } from 'vitest';
import { ServerMessageReader } from './db-proxy.js';

/** One backend message: its type, a length that counts itself, the body. */
function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const ready = (status: string) => message('Z', Buffer.from(status, 'latin1'));

describe('ServerMessageReader', () => {
  it('follows the transaction status of ReadyForQuery, however the stream is split', () => {
    const stream = Buffer.concat([
      message('R', Buffer.alloc(4)),
      ready('I'),
      message('C', Buffer.from('BEGIN\0')),
      ready('T'),
      message('C', Buffer.from('INSERT 0 1\0')),
      ready('T'),
      message('C', Buffer.from('COMMIT\0')),
      ready('I'),
    ]);
    const statuses: Array<string | undefined> = [];
    const reader = new ServerMessageReader();
    expect(reader.status).toBeUndefined();
    for (let i = 0; i < stream.length; i++) {
      reader.feed(stream.subarray(i, i + 1));
      if (statuses.at(-1) !== reader.status) statuses.push(reader.status);
    }
    expect(statuses).toEqual(['I', 'T', 'I']);
    const whole = new ServerMessageReader();
    whole.feed(stream.subarray(0, stream.length - 6));
    expect(whole.inTransaction).toBe(true);
    whole.feed(stream.subarray(stream.length - 6));
    expect(whole.inTransaction).toBe(false);
  });

  it('reads a failed transaction as still inside one, and a Z inside another message as data', () => {
    const reader = new ServerMessageReader();
    reader.feed(Buffer.concat([message('D', Buffer.from('ZZZZT')), ready('E')]));
    expect(reader.status).toBe('E');
    expect(reader.inTransaction).toBe(true);
  });
});
