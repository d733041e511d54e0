import { defineConfig } from 'vitest/config'

// Unit and end-to-end tests on embedded defaults. Real services: vitest.integration.config.ts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/integration/**', 'node_modules/**'],
    globalSetup: ['test/scratch-tmpdir.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks'
  }
})
