import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Vitest's global setup: every temporary directory a test makes (`tmpdir()`), and those of the
 * processes it starts, goes under one directory made for the run, removed when the run ends.
 * Tests that clean up after themselves lose nothing by it; the rest no longer leave hundreds of
 * directories in the machine's /tmp on every `npm test`.
 */
export default async function setup (): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-test-run-'))
  // A server a test restarts outlives the run: it is started in the machine's (test/integration/synapse.ts).
  process.env.CONCLAVE_MACHINE_TMPDIR ??= tmpdir()
  process.env.TMPDIR = dir
  return async () => { await rm(dir, { recursive: true, force: true }) }
}
