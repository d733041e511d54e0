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

/** Anchors a signed record and announces it, as any member could; returns once everyone handled it. */
export async function announce (sim: Simulation, jwt: string): Promise<string> {
  const block = await sim.ledger.append(jwt)
  await sim.bus.publish(sim.config.federation, { kind: 'record', block: block.id, jwt })
  await sim.settle()
  return block.id
}

/** Signs a record as `who`, then anchors and announces it. */
export async function inject (sim: Simulation, who: Identity, record: Parameters<Identity['sign']>[0]): Promise<string> {
  return announce(sim, await who.sign(record))
}

/** The errors by which each participant refused `block`, in participant order. */
export function refusals (sim: Simulation, block: string): string[] {
  return sim.participants.flatMap(q => (sim.rejections.get(q.name) ?? []).filter(r => r.block === block).map(r => r.error.name))
}
