// Test runner settings for every package: the library's unit tests beside its code
// (src/**/*.test.ts) and its integration tests (test/), the service's (apps/service/). Imports
// of `retrysafe/*` resolve to the library's sources (the `retrysafe-source` export condition),
// while the service processes the end-to-end tests start run the built dist/. End-to-end tests
// start real server processes, so they get generous timeouts; nothing asserts on wall-clock time.
import { defineConfig } from 'vitest/config';

const conditions = ['retrysafe-source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only fight over the CPU the servers under test need.
    maxWorkers: 2,
    allowOnly: false,
    projects: [
      {
        extends: true,
        test: { name: 'retrysafe', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'service',
          include: ['apps/service/src/**/*.test.ts', 'apps/service/test/**/*.test.ts'],
        },
      },
    ],
  },
});
