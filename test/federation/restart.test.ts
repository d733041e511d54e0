import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { autopilot, type DriverFactory } from '../../src/federation/driver.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { SKETCH_ROUNDS } from '../../src/federation/steps/geometry.ts'
import { smallConfig, tempDir } from './helpers.ts'

/** The votes `did` signed, in ledger order. */
async function votesOf (sim: Simulation, did: string): Promise<Vote[]> {
  const votes: Vote[] = []
  for await (const block of sim.ledger.blocks()) {
    const { issuer, record } = peekRecord(block.record)
    if (record?.type === 'vote' && issuer === did) votes.push(record)
  }
  return votes
}

describe('a member restarted mid-run', () => {
  const sims: Simulation[] = []
  afterEach(async () => { for (const sim of sims.splice(0)) await sim.close() })

  it('measures the updates it judges as a member never stopped: the same signed measurements, the same model', async () => {
    const victim = 1
    // The same run twice; in one, the victim is restarted after proposing in round 2, before its peers propose.
    const runs = []
    for (const restart of [false, true]) {
      const sim = await Simulation.create(smallConfig({ task: { kind: 'classify', trainLimit: 300, testLimit: 200, features: 512 } }), { dir: await tempDir() })
      sims.push(sim)
      await sim.charter()
      await sim.round(1)
      await sim.propose(2, [sim.participants[victim]!])
      if (restart) await sim.restart(victim)
      await sim.propose(2, sim.participants.filter((_, i) => i !== victim))
      await sim.closeRound(2)
      // Block ids differ between runs (blocks carry their time): what the victim decided, and from what.
      const votes = (await votesOf(sim, sim.participants[victim]!.did)).map(v => ({ round: v.round, accept: v.accept, measurement: v.measurement }))
      runs.push({ votes, model: sim.participants[0]?.globalModel?.ref.sha256 })
    }
    const [whole, restarted] = runs
    expect(whole?.votes.filter(v => v.round === 2 && v.measurement !== undefined && 'geometry' in v.measurement && v.measurement.geometry?.normRatio !== undefined)).toHaveLength(2)
    expect(restarted).toEqual(whole)
  })

  it('keeps the window of sketches a member never stopped keeps: restarted after SKETCH_ROUNDS + 2 rounds, it recalls none older, reads none older, and signs the same measurements', async () => {
    const victim = 1
    const last = SKETCH_ROUNDS + 2
    const runs = []
    for (const restart of [false, true]) {
      // Agent 3's update is rejected each round: only a sketch of it, not a merge, would read it again.
      const sim = await Simulation.create(smallConfig({ rounds: last + 1, ledger: { kind: 'tangle', difficulty: 0 }, task: { kind: 'classify', trainLimit: 300, testLimit: 200, features: 512 }, attacks: [{ kind: 'scale', agent: 3 }] }), { dir: await tempDir() })
      sims.push(sim)
      await sim.charter()
      for (let round = 1; round <= last; round++) await sim.round(round)
      if (restart) {
        const reads = vi.spyOn(sim.store, 'get')
        await sim.restart(victim)
        // The rounds of the rejected updates its replay read: those of its window only (before: all 18, one a round).
        const state = sim.participants[victim]!.state
        const merged = new Set([...state.rounds.keys()].flatMap(round => state.accepted(round).map(e => e.block)))
        const read = new Set(reads.mock.calls.map(([cid]) => cid))
        const rejectedRead = [...state.proposals.values()].filter(e => !merged.has(e.block) && read.has(e.signed.record.delta.cid)).map(e => e.signed.record.round)
        expect(rejectedRead.sort((a, b) => a - b)).toEqual(Array.from({ length: SKETCH_ROUNDS }, (_, i) => 3 + i))
        reads.mockRestore()
      }
      const held = sim.participants[victim]!.holding
      await sim.round(last + 1)
      const votes = (await votesOf(sim, sim.participants[victim]!.did)).filter(v => v.round === last + 1).map(v => ({ accept: v.accept, measurement: v.measurement }))
      runs.push({ held, votes })
    }
    const [whole, restarted] = runs
    expect(whole?.held).toEqual({ updates: 0, merges: 0, sketchRounds: Array.from({ length: SKETCH_ROUNDS }, (_, i) => 3 + i) })
    expect(whole?.votes).toHaveLength(2)
    expect(restarted).toEqual(whole)
  }, 60_000)

  it('casts the votes it owes through its driver\'s resume: an autopilot down while its peers proposed votes on them once restarted, and not without resume', async () => {
    const victim = 1
    const owed: number[] = []
    for (const withResume of [true, false]) {
      // The autopilot as it is, or without its resume: what the restart alone (catching up from the ledger) does.
      const driver: DriverFactory = async (participant, options) => {
        const { resume, ...rest } = await autopilot(participant, options)
        return withResume ? { ...rest, resume } : rest
      }
      const sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver })
      sims.push(sim)
      await sim.charter()
      const down = sim.participants[victim]!
      down.stop()
      const peers = sim.participants.filter((_, i) => i !== victim)
      await sim.propose(1, peers)
      expect(await votesOf(sim, down.did)).toEqual([])
      await sim.restart(victim)
      const votes = await votesOf(sim, down.did)
      owed.push(votes.length)
      if (withResume) {
        expect(votes.map(v => v.proposal).sort()).toEqual([...sim.participants[0]!.state.proposals.keys()].sort())
        const report = await sim.closeRound(1)
        expect(report.proposals).toBe(peers.length)
      }
    }
    expect(owed).toEqual([2, 0])
  })
})
