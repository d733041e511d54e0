import { afterEach, describe, expect, it } from 'vitest'
import { agentDriver } from '../../agents/index.ts'
import { BackendUnavailableError } from '../../src/core/errors.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { expectAuditClean, smallConfig, tempDir, votesIn } from './helpers.ts'

/** One round of a clean federation whose store, once chartered, fails the first `failures` reads as a kubo that gave no answer in time would. */
async function roundWithOutage (driver: DriverFactory | undefined, failures: number): Promise<{ sim: Simulation, failed: number }> {
  const sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver })
  await sim.charter()
  const get = sim.store.get.bind(sim.store)
  let failed = 0
  sim.store.get = async (cid, options) => {
    if (failed < failures) {
      failed++
      throw new BackendUnavailableError('kubo at http://127.0.0.1:5001 gave no answer to cat within 30000 ms')
    }
    return get(cid, options)
  }
  await sim.round(1)
  return { sim, failed }
}

/**
 * A store that does not answer is the voter's trouble, not the proposer's: judged "unusable",
 * an honest update was rejected (and under `excludeRejected` and `strikes` its member could
 * lose its vote). The voter tries again instead, and votes as it would have.
 */
describe('a voter whose store fails for a moment', () => {
  let sims: Simulation[] = []
  afterEach(async () => { for (const s of sims) await s.close(); sims = [] })

  it.each([['the autopilot', undefined], ['policy agents', agentDriver()]] as const)('%s: rejects no honest update for it, and ends with the model of a run without the outage', async (_, driver) => {
    const clean = await roundWithOutage(driver, 0)
    const outage = await roundWithOutage(driver, 2)
    sims = [clean.sim, outage.sim]
    expect(outage.failed).toBe(2)
    const cast = (await votesIn(outage.sim)).map(v => v.vote)
    expect(cast.filter(v => !v.accept)).toEqual([])
    expect(cast).toHaveLength(6)
    expect(outage.sim.participants[0]?.globalModel?.ref.sha256).toBe(clean.sim.participants[0]?.globalModel?.ref.sha256)
    await expectAuditClean(outage.sim)
  })
})
