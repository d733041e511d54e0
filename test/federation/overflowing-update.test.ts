import { afterEach, describe, expect, it, vi } from 'vitest'
import { Simulation } from '../../src/federation/simulation.ts'
import type { FederationState } from '../../src/federation/state.ts'
import { expectAuditClean, smallConfig, tempDir, votesIn } from './helpers.ts'

// The hostile member's update: every value 3e38 (2.9e38 in round 2, so as not to re-send it),
// finite as every decoder asks, while 16 of them summed into one bucket of a count sketch pass float32's 3.4e38.
vi.mock('../../src/federation/attacks.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/federation/attacks.ts')>()
  const { mapValues } = await import('../../src/ml/weights.ts')
  class Conduct extends real.Conduct {
    override async update (...args: Parameters<InstanceType<typeof real.Conduct>['update']>): ReturnType<InstanceType<typeof real.Conduct>['update']> {
      const update = await super.update(...args)
      return this.attackAt(args[2]) === undefined ? update : { ...update, delta: mapValues(update.delta, () => 3.1e38 - args[2] * 1e37) }
    }
  }
  return { ...real, Conduct }
})

// Found red-teaming: its sketch overflowed to Infinity and stayed with every judge for the run,
// so every later update, anyone's, lay at a NaN cosine with it; no vote can sign a NaN, and
// every honest member rejected every honest update after it as unmeasurable.
describe('one member proposing an update of huge finite values', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('has it rejected as unmeasurable and every honest update after it merged, by a member restarted since too, as the audit decides again', async () => {
    const config = smallConfig({ agents: 4, rounds: 2, quorum: { kind: 'fraction', fraction: 0.5 }, attacks: [{ kind: 'scale', agent: 4 }] })
    sim = await Simulation.create(config, { dir: await tempDir() })
    await sim.charter()
    await sim.round(1)
    // A restarted member recalls the sketches of what it judged from the ledger.
    await sim.restart(1)
    await sim.round(2)
    const state = sim.participants[0]?.state as FederationState
    const hostile = sim.participants[3]?.did
    const merged = [1, 2].map(round => (state.rounds.get(round)?.proposals ?? []).map(block => [state.proposals.get(block)?.signed.issuer === hostile, state.derive(block).accepted]))
    expect(merged.map(round => round.sort())).toEqual([1, 2].map(() => [[false, true], [false, true], [false, true], [true, false]]))
    const votes = await votesIn(sim)
    const onHostile = votes.filter(({ vote }) => state.proposals.get(vote.proposal)?.signed.issuer === hostile)
    expect(onHostile.map(({ vote }) => vote.measurement)).toEqual(Array(6).fill({ unusable: 'ERR_UNMEASURABLE_UPDATE' }))
    // Each vote on an honest update, the restarted member's included, accepts it (three proposals a round, three voters each).
    expect(votes.filter(v => !onHostile.includes(v)).map(({ vote }) => vote.accept)).toEqual(Array(18).fill(true))
    await expectAuditClean(sim)
  }, 120_000)

  // Found reading it again: the rules that judge the round's combination measured every peer's update to admit it,
  // and the unmeasurable one's error ended the judgement of whichever proposal was judged: every honest update rejected.
  it('under a rule that judges the round\'s combination, leaves it out of the combination and merges every honest update', async () => {
    const config = smallConfig({ agents: 4, rounds: 1, quorum: { kind: 'fraction', fraction: 0.5 }, acceptance: 'marginal', attacks: [{ kind: 'scale', agent: 4 }] })
    sim = await Simulation.create(config, { dir: await tempDir() })
    await sim.charter()
    await sim.round(1)
    const state = sim.participants[0]?.state as FederationState
    const hostile = sim.participants[3]?.did
    const votes = await votesIn(sim)
    const onHonest = votes.filter(({ vote }) => state.proposals.get(vote.proposal)?.signed.issuer !== hostile)
    expect(onHonest.map(({ vote }) => vote.accept)).toEqual(Array(9).fill(true))
    await expectAuditClean(sim)
  }, 120_000)
})
