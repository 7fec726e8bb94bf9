import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Two projects: component tests in happy-dom (fast, no server), and end-to-end tests that build the UI, start the real
 * server as a process and drive Debian's Chromium through playwright-core. Under CI a JSON report is written for
 * .ci/run's closing tally, as for every package.
 */
export default defineConfig({
  plugins: [react()],
  test: {
    reporters: process.env.CI
      ? ['default', ['json', { outputFile: resolve(ROOT, '.test-results', 'web.json') }]]
      : ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'components',
          include: ['src/**/*.test.{ts,tsx}'],
          environment: 'happy-dom',
          setupFiles: ['./src/test/setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['e2e/**/*.e2e.test.ts'],
          environment: 'node',
          globalSetup: ['./e2e/build.ts'],
          testTimeout: 120_000,
          hookTimeout: 150_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
