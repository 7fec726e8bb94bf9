import { resolve } from 'node:path';
import { defineConfig, type ViteUserConfig } from 'vitest/config';
import type { InlineConfig } from 'vitest/node';

const ROOT = import.meta.dirname;

/**
 * One vitest setup for every package. Storage tests run on embedded PGlite by default. When TEST_DATABASE_URL
 * (or DATABASE_URL) names a Postgres server, every test runs on it ("postgres" project) and the integration
 * tests run a second time on PGlite ("pglite" project), so CI proves both. Under CI a JSON report per package is
 * written for .ci/run's closing tally.
 */
export function keyledgerVitestConfig(pkg: string, options: { testTimeout?: number } = {}): ViteUserConfig {
  const include = ['src/**/*.test.ts', 'test/**/*.test.ts'];
  const postgres = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  const reporters: InlineConfig['reporters'] = process.env.CI
    ? ['default', ['json', { outputFile: resolve(ROOT, '.test-results', `${pkg}.json`) }]]
    : ['default'];
  const test = {
    testTimeout: options.testTimeout ?? 60_000,
    hookTimeout: 90_000,
    reporters,
  };
  if (!postgres) return defineConfig({ test: { ...test, include } });
  return defineConfig({
    test: {
      ...test,
      projects: [
        { extends: true, test: { name: 'postgres', include } },
        {
          extends: true,
          test: {
            name: 'pglite',
            include: ['src/**/*.int.test.ts', 'test/**/*.int.test.ts'],
            env: { TEST_DATABASE_URL: '', DATABASE_URL: '', KEYLEDGER_REQUIRE_POSTGRES: '' },
          },
        },
      ],
    },
  });
}
