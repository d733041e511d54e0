import { describe, expect, it } from 'vitest'
import { agentDriver } from '../../agents/index.ts'
import type { RunConfigInput } from '../../src/federation/config.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'

/** Each round's model hash of a small run: honest members and a free-rider, which copies the round's first update (so trains in its turn). */
async function hashes (trainWorkers: number, driver?: DriverFactory, task?: RunConfigInput['task']): Promise<string[]> {
  const sim = await Simulation.create(smallConfig({ agents: 3, rounds: 2, attacks: [{ kind: 'free-ride', agent: 3 }], ...(task === undefined ? {} : { task }) }), { dir: await tempDir(), driver, trainWorkers })
  try {
    const out = [(await sim.charter()).modelHash]
    for (let round = 1; round <= 2; round++) out.push((await sim.round(round)).modelHash)
    return out
  } finally {
    await sim.close()
  }
}

describe('members training on worker threads', () => {
  it.each([
    { driver: 'the autopilot', factory: undefined },
    { driver: 'agents (the protocol policy)', factory: agentDriver() },
    // Distilling in round 1, each in its turn; trained ahead in round 2, with all answers in.
    { driver: 'the autopilot, learning QA from a teacher', factory: undefined, task: { kind: 'qa', trainLimit: 300, testLimit: 40, features: 4096, hidden: 32, maxWords: 300 } as const }
  ])('reach the models of training on the main thread, round by round, under $driver', async ({ factory, task }) => {
    const here = await hashes(1, factory, task)
    expect(new Set(here).size).toBe(3)
    expect(await hashes(2, factory, task)).toEqual(here)
  })
})
