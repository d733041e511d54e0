import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/core/errors.ts'
import { Charter, MAX_COMMITTEE, MAX_RECORD_BYTES, type Vote } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import { drawCommittee, type CommitteeSlot } from '../../src/federation/committee.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { charterOf } from '../ledger/helpers.ts'
import { chartered, errorsFor, inject, smallConfig, tempDir } from './helpers.ts'

const members = Array.from({ length: 20 }, (_, i) => createIdentity(new Uint8Array(32).fill(i + 1)).did)
const slot: CommitteeSlot = { federation: 'fed', round: 3, base: 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i', proposer: members[4] as string }

describe('the committee draw', () => {
  it('draws k of the proposer\'s peers, the same for whoever re-derives it; by their places in the charter\'s list, so other keys in the same places draw the same seats', () => {
    const committee = drawCommittee(slot, members, 5)
    expect(committee).toHaveLength(5)
    expect(new Set(committee).size).toBe(5)
    expect(committee).not.toContain(slot.proposer)
    expect(drawCommittee({ ...slot }, [...members], 5)).toEqual(committee)
    // A simulation's members get fresh keys each run: the same seed must judge (and merge) the same way.
    const fresh = Array.from({ length: 20 }, (_, i) => createIdentity(new Uint8Array(32).fill(i + 101)).did)
    const seats = (list: readonly string[], drawn: string[]): number[] => drawn.map(m => list.indexOf(m))
    expect(seats(fresh, drawCommittee({ ...slot, proposer: fresh[4] as string }, fresh, 5))).toEqual(seats(members, committee))
    // A larger committee extends the smaller one: the members are ranked once.
    expect(drawCommittee(slot, members, 7).slice(0, 5)).toEqual(committee)
  })

  it('draws what it drew before this process shared its draws (seats fixed by sha-256, asked again and again)', () => {
    const seats = (d: readonly string[]): number[] => d.map(m => members.indexOf(m))
    // A charter's member list arrives frozen (verifyRecord): its draws are kept.
    for (const list of [members, Object.freeze([...members])]) {
      for (let asked = 0; asked < 3; asked++) {
        expect(seats(drawCommittee(slot, list, 5))).toEqual([7, 17, 14, 11, 3])
        expect(seats(drawCommittee({ ...slot, round: 4 }, list, 5))).toEqual([1, 0, 12, 11, 7])
      }
      // A caller that changes what it was given changes nobody else's draw.
      const mine = drawCommittee(slot, list, 5)
      mine.splice(0, 5, members[0] as string)
      expect(seats(drawCommittee(slot, list, 5))).toEqual([7, 17, 14, 11, 3])
    }
  })

  it('draws by DID, as before places, under a charter that names no draw: the same seats as then', () => {
    const seats = (d: readonly string[]): number[] => d.map(m => members.indexOf(m))
    expect(seats(drawCommittee(slot, members, 5, 'did'))).toEqual([2, 19, 3, 11, 14])
    expect(seats(drawCommittee({ ...slot, round: 4 }, members, 5, 'did'))).toEqual([15, 12, 6, 5, 13])
    expect(drawCommittee(slot, members, 5, 'did')).not.toEqual(drawCommittee(slot, members, 5))
  })

  it('draws anew for another round, base model, proposer or federation', () => {
    const committee = drawCommittee(slot, members, 5)
    const others = [{ round: 4 }, { base: 'bafkreiaxnnnb7qz2focittuqq3ya25q7rcv3bqynnczfzako47346wosmu' }, { proposer: members[5] as string }, { federation: 'other' }]
    for (const change of others) expect(drawCommittee({ ...slot, ...change }, members, 5)).not.toEqual(committee)
  })

  it('spreads the seats evenly: over 2,000 slots every peer sits on about k/(N−1) of the committees', () => {
    const seats = new Map<string, number>()
    for (let round = 1; round <= 2000; round++) {
      for (const m of drawCommittee({ ...slot, round }, members, 5)) seats.set(m, (seats.get(m) ?? 0) + 1)
    }
    // Expected 2,000 · 5/19 ≈ 526 each; binomial sd ≈ 20, so ±100 is five of them.
    expect(seats.size).toBe(19)
    for (const n of seats.values()) expect(Math.abs(n - 2000 * 5 / 19)).toBeLessThan(100)
  })
})

describe('the committee setting of a run config', () => {
  it('is absent unless set, and refuses a committee of every member or a quorum beyond it (ConfigError)', () => {
    expect(parseRunConfig({}).committee).toBeUndefined()
    expect(parseRunConfig({ agents: 5, committee: 4, quorum: 4 }).committee).toBe(4)
    expect(() => parseRunConfig({ agents: 5, committee: 5 })).toThrow(ConfigError)
    expect(() => parseRunConfig({ agents: 5, committee: 3, quorum: 4 })).toThrow(ConfigError)
    expect(() => parseRunConfig({ agents: 5, committee: 0 })).toThrow(ConfigError)
  })

  it('is needed beyond 128 agents, and with it a run may have up to 256; 127 peers\' votes still sign as one decision', async () => {
    expect(parseRunConfig({ agents: 100, committee: 5 }).agents).toBe(100)
    expect(parseRunConfig({ agents: 128 }).agents).toBe(128)
    expect(() => parseRunConfig({ agents: 129 })).toThrow(/more than 128 agents need a committee/)
    expect(() => parseRunConfig({ agents: 257, committee: 5 })).toThrow(ConfigError)
    const recorder = createIdentity(new Uint8Array(32).fill(98))
    const votes = Array.from({ length: 127 }, (_, i) => i.toString(16).padStart(64, 'c'))
    const jwt = await recorder.sign({ type: 'decision', federation: 'conclave-local', round: 1000, proposal: 'b'.repeat(64), proposer: recorder.did, accepted: true, accepts: 127, rejects: 0, required: 127, votes })
    expect(jwt.length).toBeLessThan(MAX_RECORD_BYTES)
  })

  it('is at most MAX_COMMITTEE, so a decision naming a full committee and its votes still signs as one record', async () => {
    const recorder = createIdentity(new Uint8Array(32).fill(99))
    const committee = Array.from({ length: MAX_COMMITTEE }, (_, i) => createIdentity(new Uint8Array(32).fill(i + 100)).did)
    const votes = committee.map((_, i) => i.toString(16).padStart(64, 'a'))
    const jwt = await recorder.sign({ type: 'decision', federation: 'fed', round: 1, proposal: 'b'.repeat(64), proposer: recorder.did, accepted: true, accepts: MAX_COMMITTEE, rejects: 0, required: 33, votes, committee })
    expect(jwt.length).toBeLessThan(MAX_RECORD_BYTES)
    const federation = charterOf([...committee, ...members])
    expect([MAX_COMMITTEE, MAX_COMMITTEE + 1].map(k => Charter.safeParse({ ...federation, committee: k }).success)).toEqual([true, false])
  })
})

/**
 * Ten members, committees of three: each proposal is judged and voted on by its three
 * only, a vote from anyone else is refused by every member and listed by the audit, and
 * the audit re-derives every draw, so a recorder's decision naming another committee fails it.
 */
/**
 * A run made before committees were drawn by place: its charter names no draw, and every
 * member and the audit draw by DID, as it ran (found red-teaming: switching the draw made
 * every such run's honest votes "not on the committee", and its audit fail).
 */
describe('a federation whose charter is from before the draw by place', () => {
  it('judges by committees drawn by DID, and its audit passes', async () => {
    const sim = await chartered({ agents: 5, committee: 2, rounds: 1 }, c => { const { committeeDraw: _, ...before } = c; return before })
    try {
      expect(sim.participants[0]?.state.charter?.record.committeeDraw).toBeUndefined()
      await sim.propose(1)
      const observer = sim.participants[0] as Participant
      const members = observer.state.charter?.record.members as string[]
      for (const entry of observer.state.proposals.values()) {
        const slot = { federation: sim.config.federation, round: 1, base: entry.signed.record.base, proposer: entry.signed.issuer }
        expect(entry.committee).toEqual(drawCommittee(slot, members, 2, 'did'))
        for (const judge of entry.committee ?? []) {
          const voter = sim.participants.find(q => q.did === judge) as Participant
          await voter.vote(entry.block, (await voter.evaluate(entry.block)).passes)
        }
      }
      const report = await sim.closeRound(1)
      expect(report.accepts + report.rejects).toBe(5)
      expect(await audit(sim.ledger, sim.store)).toMatchObject({ ok: true, rejected: [], modelHash: report.modelHash })
    } finally {
      await sim.close()
    }
  }, 240_000)
})

describe('a federation with committees', () => {
  let sim: Simulation
  const vote = (proposal: string): Vote => ({ type: 'vote', federation: sim.config.federation, round: 1, proposal, accept: true, score: 0.5, rationale: 'not drawn, voting anyway' })

  const member = (did: string): Participant => sim.participants.find(q => q.did === did) as Participant

  beforeAll(async () => {
    sim = await Simulation.create(smallConfig({ agents: 10, committee: 3, rounds: 2 }), { dir: await tempDir() })
    await sim.charter()
  })
  afterAll(async () => { await sim?.close() })

  it('completes a round in which only the committees judge and vote, refuses an outsider\'s vote, merges, and passes the audit', async () => {
    await sim.propose(1)
    const observer = sim.participants[0] as Participant
    expect(observer.state.charter?.record.committeeDraw).toBe('place')
    const proposals = [...observer.state.proposals.values()]
    expect(proposals).toHaveLength(10)
    for (const entry of proposals) {
      const committee = observer.state.judges(entry.block)
      expect(committee).toEqual(drawCommittee({ federation: sim.config.federation, round: 1, base: entry.signed.record.base, proposer: entry.signed.issuer }, [...observer.state.members], 3))
      expect([...entry.votes.keys()].sort()).toEqual([...committee].sort())
      // Only the judges measured it: 3 evaluations of each proposal, not 9.
      expect(sim.participants.filter(q => q.evaluation(entry.block) !== undefined).map(q => q.did).sort()).toEqual([...committee].sort())
    }

    const target = proposals[0] as (typeof proposals)[number]
    const outsider = sim.participants.find(q => q.did !== target.signed.issuer && !observer.state.judges(target.block).includes(q.did)) as Participant
    await expect(outsider.vote(target.block, true)).rejects.toMatchObject({ name: 'NotOnCommitteeError', code: 'ERR_NOT_ON_COMMITTEE' })
    await expect(outsider.evaluate(target.block)).rejects.toMatchObject({ name: 'NotOnCommitteeError' })
    const intruder = await inject(sim, outsider.identity, vote(target.block))
    expect(errorsFor(sim, intruder)).toEqual(Array(10).fill('NotOnCommitteeError'))

    const report = await sim.closeRound(1)
    expect(report.accepts).toBeGreaterThan(0)
    for (const entry of observer.state.proposals.values()) {
      expect(entry.decision?.record).toMatchObject({ required: 2, committee: observer.state.judges(entry.block) })
    }
    const result = await audit(sim.ledger, sim.store)
    expect(result).toMatchObject({ ok: true, proposals: 10, votes: 30, decisions: 10, checkpoints: 1, modelHash: report.modelHash })
    expect(result.rejected.map(r => [r.block, r.error.code])).toEqual([[intruder, 'ERR_NOT_ON_COMMITTEE']])
  })

  it('lists as refused a recorder\'s decision that names a committee other than the draw, as every member refused it', async () => {
    const observer = sim.participants[0] as Participant
    await sim.propose(2, [observer])
    const block = observer.state.rounds.get(2)?.proposals[0] as string
    const drawn = observer.state.judges(block)
    const forged = [...observer.state.members].filter(m => m !== observer.did && !drawn.includes(m)).slice(0, 3)
    const recorder = member(observer.state.recorder(2))
    const decision = await inject(sim, recorder.identity, {
      type: 'decision', federation: sim.config.federation, round: 2, proposal: block, proposer: observer.did, ...observer.state.derive(block), committee: forged
    })
    expect(errorsFor(sim, decision)).toEqual(Array(10).fill('DerivationMismatchError'))
    const result = await audit(sim.ledger, sim.store)
    expect(result.ok).toBe(true)
    expect(result.rejected.find(r => r.block === decision)).toMatchObject({ type: 'decision', issuer: recorder.did, error: { name: 'DerivationMismatchError' } })
  })
})
