import { afterEach, describe, expect, it } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { chartered, measuredVote } from './helpers.ts'

/**
 * A member anchors a valid, in-window vote and never announces it on the bus, or announces
 * two in the other order than the ledger holds them. Live members applied records as the bus
 * brought them, the audit in the ledger's order: the audit failed an honest recorder's
 * decision every live member had taken (found red-teaming). Members now handle their ledger
 * in its order, the recorder everything its ledger holds before it decides.
 */
describe('records anchored but not announced, or announced out of the ledger\'s order', () => {
  let sim: Simulation
  const p = (i: number): Participant => sim.participants[i] as Participant
  afterEach(async () => { await sim?.close() })

  it('a vote anchored and never announced is counted by the recorder, every peer and the audit alike', async () => {
    sim = await chartered({ rounds: 1 })
    await sim.propose(1, [p(0)])
    const proposal = p(0).state.rounds.get(1)?.proposals[0] as string
    // agent-3 votes, anchored and announced; agent-2 anchors a vote as it measured and announces nothing
    await p(2).vote(proposal, (await p(2).evaluate(proposal)).passes)
    const vote = await measuredVote(sim, p(1), proposal, 'silent')
    const jwt = await p(1).identity.sign(vote)
    const block = await sim.ledger.append(jwt, { after: proposal })
    await sim.settle()
    // no one has been told of it yet
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([1, 1, 1])
    await sim.closeRound(1)
    expect(sim.participants.map(q => q.state.proposals.get(proposal)?.decision?.record.votes.includes(block.id))).toEqual([true, true, true])
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, rejected: [] })
  }, 240_000)

  it('two votes by one voter announced in the reverse of the ledger\'s order: every member counts the first anchored, as the audit does', async () => {
    // A judgement under which the voter may vote either way from the same measurement.
    sim = await chartered({ rounds: 1, agents: 4, quorum: { kind: 'count', count: 1 } }, c => ({ ...c, acceptance: { ...c.acceptance!, judgement: 'model' } }))
    await sim.propose(1, [p(0)])
    const proposal = p(0).state.rounds.get(1)?.proposals[0] as string
    const base: Vote = { ...await measuredVote(sim, p(1), proposal, 'x'), judgement: 'model' }
    const accept = await p(1).identity.sign({ ...base, accept: true })
    const reject = await p(1).identity.sign({ ...base, accept: false })
    const a = await sim.ledger.append(accept, { after: proposal })
    const r = await sim.ledger.append(reject, { after: proposal })
    await sim.bus.publish(sim.config.federation, { kind: 'record', block: r.id, jwt: reject })
    await sim.settle()
    await sim.bus.publish(sim.config.federation, { kind: 'record', block: a.id, jwt: accept })
    await sim.settle()
    expect(sim.participants.map(q => q.state.proposals.get(proposal)?.votes.get(p(1).did)?.signed.record.accept)).toEqual([true, true, true, true])
    await sim.closeRound(1)
    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    expect(report.rejected.map(x => [x.block, x.error.name])).toEqual([[r.id, 'DuplicateVoteError']])
  }, 240_000)
})
