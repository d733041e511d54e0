import { afterEach, describe, expect, it, vi } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { chartered, measuredVote, smallConfig, tempDir } from './helpers.ts'

/**
 * A record is valid if it was valid when the ledger anchored it, for a live member, a member
 * catching up after a restart and the audit alike (found red-teaming: a member checked `exp`
 * against its own clock, so one that caught up later refused what the others had counted).
 */
describe('record lifetimes are checked at the block\'s time, live and on catching up', () => {
  let sim: Simulation
  const p = (i: number): Participant => sim.participants[i] as Participant
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('a vote signed to live 61 s, counted live and by the audit, is counted by a member that catches up 10 minutes later', async () => {
    sim = await chartered({ rounds: 1 })
    await sim.propose(1, [p(0)])
    const proposal = p(0).state.rounds.get(1)?.proposals[0] as string
    await p(2).vote(proposal, (await p(2).evaluate(proposal)).passes)
    const vote = await measuredVote(sim, p(1), proposal, 'short-lived')
    const jwt = await p(1).identity.sign(vote, { expiresIn: 61 })
    const block = await sim.ledger.append(jwt, { after: proposal })
    await sim.bus.publish(sim.config.federation, { kind: 'record', block: block.id, jwt })
    await sim.settle()
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([2, 2, 2])
    await sim.closeRound(1)
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)

    // 10 minutes later agent-3 restarts and catches up from the ledger (before the fix: ExpiredRecordError, then the decision and checkpoint refused)
    const real = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => real() + 600_000)
    const fresh = await sim.restart(2)
    expect(sim.rejections.get(fresh.name) ?? []).toEqual([])
    expect(fresh.state.global).toEqual(p(0).state.global)
    expect(fresh.state.global?.round).toBe(1)
  }, 240_000)

  it('a member restarted more than an hour (records\' default lifetime) after the charter replays the whole ledger', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir() })
    await sim.charter()
    await sim.round(1)
    const real = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => real() + 2 * 3600_000)
    const fresh = await sim.restart(1)
    expect(sim.rejections.get(fresh.name) ?? []).toEqual([])
    expect(fresh.state.global?.round).toBe(1)
  }, 240_000)
})
