import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseRunConfig, type RunConfig, type RunConfigInput } from '../../src/federation/config.ts'

/** A federation small enough for tests: few agents, a slice of OHSUMED, few rounds. */
export function smallConfig (overrides: RunConfigInput = {}): RunConfig {
  return parseRunConfig({
    agents: 3,
    rounds: 2,
    seed: 7,
    quorum: 'majority',
    ledger: { kind: 'tangle', difficulty: 4 },
    task: { kind: 'classify', trainLimit: 900, testLimit: 400, features: 2048 },
    ...overrides
  })
}

export async function tempDir (prefix = 'conclave-run-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}
