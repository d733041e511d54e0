import { defineConfig } from 'vitest/config'

// Real services on loopback, started by scripts/services/*.sh (see test/integration/setup.ts).
export default defineConfig({
  test: {
    include: ['test/integration/**/*.int.test.ts'],
    // Services start first, so they keep the machine's temporary directory, not the run's.
    globalSetup: ['test/integration/setup.ts', 'test/scratch-tmpdir.ts'],
    testTimeout: 120_000,
    hookTimeout: 1_800_000,
    pool: 'forks',
    fileParallelism: false
  }
})
