// Test runner settings: unit tests sit beside the code (src/**/*.test.ts); integration and
// end-to-end tests live in test/. End-to-end tests start real server processes, so they get
// generous timeouts; nothing here asserts on wall-clock time.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only fight over the CPU the servers under test need.
    maxWorkers: 2,
    allowOnly: false,
  },
});
