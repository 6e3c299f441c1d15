// Settings that cannot work are refused at start with a message naming the variable.
// Regression: IDEMPOTENCY_RETENTION_MS=1e19 started cleanly and every keyed write answered 503.
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  defaultHttpLimits,
  maxDurationMs,
  maxTimeoutMs,
  resolveServiceConfig,
} from './config.js';

const resolve = (env: Record<string, string>) => resolveServiceConfig({}, env);

describe('resolveServiceConfig', () => {
  it('fills every bound with its documented default', () => {
    const config = resolve({});
    expect(config.http).toEqual(defaultHttpLimits);
    expect(config.postgres).toEqual({
      poolMax: 10,
      connectTimeoutMs: 2_000,
      statementTimeoutMs: 5_000,
      lockTimeoutMs: 2_000,
      queryTimeoutMs: 6_000,
    });
    expect(config.redis).toEqual({ connectTimeoutMs: 2_000, commandTimeoutMs: 2_000 });
    expect(config.readyTimeoutMs).toBe(1_000);
  });

  it('refuses a retention past what PostgreSQL bigint, Redis PXAT and safe integers can hold (1e19)', () => {
    expect(() => resolve({ IDEMPOTENCY_RETENTION_MS: '1e19' })).toThrow(ConfigError);
    expect(() => resolve({ IDEMPOTENCY_RETENTION_MS: '10000000000000000000' })).toThrow(
      /IDEMPOTENCY_RETENTION_MS=10000000000000000000 is out of range/,
    );
    expect(() => resolve({ IDEMPOTENCY_RETENTION_MS: String(Number.MAX_SAFE_INTEGER) })).toThrow(ConfigError);
    expect(resolve({ IDEMPOTENCY_RETENTION_MS: String(maxDurationMs) }).retentionMs).toBe(maxDurationMs);
    expect(Date.now() + maxDurationMs).toBeLessThan(Number.MAX_SAFE_INTEGER);
  });

  it('refuses non-integers, signs and other spellings instead of guessing', () => {
    for (const value of ['1.5', '-5', '0x10', ' 5', 'abc', 'Infinity', 'NaN']) {
      expect(() => resolve({ IDEMPOTENCY_LEASE_MS: value })).toThrow(/not a whole number/);
    }
    expect(() => resolve({ IDEMPOTENCY_LEASE_MS: '0' })).toThrow(/out of range/);
  });

  it('reads the per-tenant record bound and the stored-response limit, refusing zero', () => {
    expect(resolve({}).maxRecordsPerTenant).toBe(100_000);
    const config = resolve({
      IDEMPOTENCY_MAX_RECORDS_PER_TENANT: '5000',
      IDEMPOTENCY_MAX_STORED_RESPONSE_BYTES: '65536',
    });
    expect(config.maxRecordsPerTenant).toBe(5000);
    expect(config.maxStoredResponseBytes).toBe(65536);
    expect(() => resolve({ IDEMPOTENCY_MAX_RECORDS_PER_TENANT: '0' })).toThrow(
      /IDEMPOTENCY_MAX_RECORDS_PER_TENANT=0 is out of range/,
    );
    expect(() => resolve({ IDEMPOTENCY_MAX_STORED_RESPONSE_BYTES: '1e6' })).toThrow(/not a whole number/);
  });

  it('refuses a lease longer than the retention, set or default', () => {
    expect(() => resolve({ IDEMPOTENCY_LEASE_MS: '2000', IDEMPOTENCY_RETENTION_MS: '1000' })).toThrow(
      /IDEMPOTENCY_LEASE_MS \(2000\) is longer than IDEMPOTENCY_RETENTION_MS \(1000\)/,
    );
    expect(() => resolve({ IDEMPOTENCY_RETENTION_MS: '1000' })).toThrow(
      /longer than IDEMPOTENCY_RETENTION_MS/,
    );
    expect(resolve({ IDEMPOTENCY_LEASE_MS: '300', IDEMPOTENCY_RETENTION_MS: '600' }).leaseMs).toBe(300);
  });

  it('refuses timeouts past what Node timers hold, zero, and contradictory pairs', () => {
    for (const name of [
      'HTTP_HEADERS_TIMEOUT_MS',
      'HTTP_REQUEST_TIMEOUT_MS',
      'HTTP_KEEP_ALIVE_TIMEOUT_MS',
      'HTTP_MAX_CONNECTIONS',
      'PG_CONNECT_TIMEOUT_MS',
      'PG_STATEMENT_TIMEOUT_MS',
      'PG_LOCK_TIMEOUT_MS',
      'PG_QUERY_TIMEOUT_MS',
      'REDIS_CONNECT_TIMEOUT_MS',
      'REDIS_COMMAND_TIMEOUT_MS',
      'READY_TIMEOUT_MS',
    ]) {
      expect(() => resolve({ [name]: String(maxTimeoutMs + 1) }), name).toThrow(new RegExp(`^${name}=`));
      expect(() => resolve({ [name]: '0' }), name).toThrow(/out of range/);
      expect(() => resolve({ [name]: '2.5' }), name).toThrow(/not a whole number/);
    }
    expect(resolve({ SHUTDOWN_GRACE_MS: '0' }).http.shutdownGraceMs).toBe(0);
    expect(() => resolve({ HTTP_HEADERS_TIMEOUT_MS: '40000' })).toThrow(
      /longer than HTTP_REQUEST_TIMEOUT_MS/,
    );
    expect(() => resolve({ PG_QUERY_TIMEOUT_MS: '5000' })).toThrow(
      /must be longer than PG_STATEMENT_TIMEOUT_MS/,
    );
    expect(() => resolve({ PG_POOL_MAX: '0' })).toThrow(/PG_POOL_MAX=0 is out of range/);
  });
});
