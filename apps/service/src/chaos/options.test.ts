import { describe, expect, it } from 'vitest';
import {
  ChaosOptionError,
  defaultCompleterDelayMs,
  defaultOrders,
  defaultPaymentsFailRate,
  parseChaosOptions,
} from './options.js';

describe('parseChaosOptions', () => {
  it('fills every option with its default', () => {
    const options = parseChaosOptions({}, {}, false);
    expect(options).toMatchObject({ store: 'sqlite', orders: defaultOrders, progress: 'lines', keep: false });
    expect(options.resetRate + options.delayRate).toBeLessThanOrEqual(1);
  });

  it('reads flags over the environment', () => {
    const options = parseChaosOptions(
      {
        store: 'postgres',
        'database-url': 'postgres://flag',
        orders: '20',
        'reset-rate': '0.5',
        quiet: true,
      },
      { DATABASE_URL: 'postgres://env' },
      true,
    );
    expect(options).toMatchObject({
      store: 'postgres',
      postgresUrl: 'postgres://flag',
      orders: 20,
      resetRate: 0.5,
    });
    expect(options.progress).toBe('off');
    expect(parseChaosOptions({}, { DATABASE_URL: 'postgres://env' }, true).postgresUrl).toBe(
      'postgres://env',
    );
  });

  it('turns database-side faults on only where that database is used', () => {
    const options = parseChaosOptions(
      { store: 'postgres+redis', 'db-cut-every-ms': '500', 'redis-restart-every-ms': '2000' },
      {},
      false,
    );
    expect(options).toMatchObject({ dbCutEveryMs: 500, redisRestartEveryMs: 2000, dbKillEveryMs: 0 });
    expect(parseChaosOptions({}, {}, false)).toMatchObject({
      dbKillEveryMs: 0,
      dbCutEveryMs: 0,
      dbStallEveryMs: 0,
      redisRestartEveryMs: 0,
      leaseOverrunRate: 0,
    });
  });

  it('keeps the orders scenario without checkout settings, and fills them for a checkout', () => {
    const orders = parseChaosOptions({}, {}, false);
    expect(orders.scenario).toBe('orders');
    expect(orders.checkout).toBeUndefined();
    const checkout = parseChaosOptions(
      { scenario: 'checkout', broker: 'rabbitmq', 'abandon-rate': '0.5' },
      { NATS_URL: 'nats://127.0.0.1:4333' },
      false,
    );
    expect(checkout.checkout).toMatchObject({
      broker: 'rabbitmq',
      abandonRate: 0.5,
      paymentsFailRate: defaultPaymentsFailRate,
      completerDelayMs: defaultCompleterDelayMs,
    });
    expect(checkout.natsUrl).toBe('nats://127.0.0.1:4333');
    expect(parseChaosOptions({ scenario: 'checkout' }, {}, false).checkout?.broker).toBeUndefined();
  });

  it.each([
    [{ store: 'mysql' }, /--store mysql/],
    [{ orders: '0' }, /--orders 0/],
    [{ workers: '1.5' }, /--workers 1.5/],
    [{ 'error-rate': '2' }, /--error-rate 2/],
    [{ 'reset-rate': '0.7', 'delay-rate': '0.6' }, /together/],
    [{ 'db-kill-every-ms': '500' }, /--db-kill-every-ms needs PostgreSQL data/],
    [{ store: 'redis', 'db-stall-every-ms': '500' }, /--db-stall-every-ms needs PostgreSQL data/],
    [
      { store: 'postgres', 'redis-restart-every-ms': '500' },
      /--redis-restart-every-ms needs records in Redis/,
    ],
    [{ 'lease-overrun-rate': '1.5' }, /--lease-overrun-rate 1.5/],
    [{ scenario: 'refunds' }, /--scenario refunds: choose orders or checkout/],
    [{ broker: 'nats' }, /--broker needs --scenario checkout/],
    [{ 'abandon-rate': '0.5' }, /--abandon-rate needs --scenario checkout/],
    [{ scenario: 'checkout', broker: 'kafka' }, /--broker kafka: choose nats or rabbitmq/],
    [{ scenario: 'checkout', 'payments-fail-rate': '1.2' }, /--payments-fail-rate 1.2/],
    [{ scenario: 'checkout', 'payments-timeout-ms': '10' }, /--payments-timeout-ms 10/],
  ])('refuses %o', (flags, message) => {
    expect(() => parseChaosOptions(flags, {}, false)).toThrow(ChaosOptionError);
    expect(() => parseChaosOptions(flags, {}, false)).toThrow(message);
  });
});
