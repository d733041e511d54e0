import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseRunConfig, type RunConfig, type RunConfigInput } from '../../src/federation/config.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import type { Identity } from '../../src/identity/index.ts'

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

/** Signs, anchors and announces a record as `who`, like any peer could, and waits until every participant handled it. */
export async function inject (sim: Simulation, who: Identity, record: Parameters<Identity['sign']>[0]): Promise<string> {
  const jwt = await who.sign(record)
  const block = await sim.ledger.append(jwt)
  await sim.bus.publish(sim.config.federation, { kind: 'record', block: block.id, jwt })
  await sim.settle()
  return block.id
}

/** The errors by which the participants refused `block`, one per participant that did. */
export function errorsFor (sim: Simulation, block: string): string[] {
  return sim.participants.flatMap(q => (sim.rejections.get(q.name) ?? []).filter(r => r.block === block).map(r => r.error.name))
}
