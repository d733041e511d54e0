import { afterEach, describe, expect, it } from 'vitest'
import type { Checkpoint, Decision } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { chartered, errorsFor, inject, recorderOf } from './helpers.ts'

/**
 * The round's recorder, hostile, closes its round before the others could propose: it
 * checkpoints the round empty as soon as it opens, or decides the first proposal once its
 * judges voted, after which every later proposal of the round is refused (RoundClosingError).
 * Every peer and the audit took either, so one member could empty every round it recorded
 * (found red-teaming). A round may be closed once every member has proposed, or once it has
 * been open a window, as the ledger dates blocks.
 */
describe('a recorder that closes its round before the others could propose', () => {
  let sim: Simulation
  afterEach(async () => { await sim?.close() })

  it('an empty checkpoint at once: refused by every peer and listed by the audit; the round then merges every member\'s update', async () => {
    sim = await chartered({ rounds: 1, agents: 3 })
    const [founder] = sim.participants as [Participant]
    const initial = founder.state.global?.model
    if (initial === undefined) throw new Error('no charter model')
    const empty: Checkpoint = { type: 'checkpoint', federation: sim.config.federation, round: 1, parent: initial.cid, model: initial, merged: [] }
    const early = await inject(sim, recorderOf(sim, 1).identity, empty)
    expect(errorsFor(sim, early)).toEqual(['PrematureCloseError', 'PrematureCloseError', 'PrematureCloseError'])
    expect(sim.participants.map(q => q.state.global?.round)).toEqual([0, 0, 0])

    await sim.propose(1)
    const report = await sim.closeRound(1)
    expect(report.accepts + report.rejects).toBe(3)
    const result = await audit(sim.ledger, sim.store)
    expect(result).toMatchObject({ ok: true, proposals: 3, checkpoints: 1, modelHash: report.modelHash })
    expect(result.rejected.map(r => [r.block, r.error.name])).toEqual([[early, 'PrematureCloseError']])
  }, 240_000)

  it('the first proposal decided once its judges voted: refused by every peer, so the later proposals count', async () => {
    sim = await chartered({ rounds: 1, agents: 3 })
    const recorder = recorderOf(sim, 1)
    const [first, later] = sim.participants.filter(q => q !== recorder) as [Participant, Participant]
    await sim.propose(1, [first])
    const proposal = first.state.rounds.get(1)?.proposals[0] as string
    for (const v of [recorder, later]) await v.vote(proposal, (await v.evaluate(proposal)).passes)
    await sim.settle()
    const decision: Decision = { type: 'decision', federation: sim.config.federation, round: 1, proposal, proposer: first.did, ...first.state.derive(proposal) }
    expect(decision.votes).toHaveLength(2)
    const early = await inject(sim, recorder.identity, decision)
    expect(errorsFor(sim, early)).toEqual(['PrematureCloseError', 'PrematureCloseError', 'PrematureCloseError'])

    await sim.propose(1, [recorder, later])
    expect(sim.participants.map(q => q.state.rounds.get(1)?.proposals.length)).toEqual([3, 3, 3])
    await sim.closeRound(1)
    expect(sim.participants.map(q => (q.state.rounds.get(1)?.proposals ?? []).every(id => q.state.proposals.get(id)?.decision !== undefined))).toEqual([true, true, true])
    const result = await audit(sim.ledger, sim.store)
    expect(result).toMatchObject({ ok: true, proposals: 3, decisions: 3 })
    expect(result.rejected.map(r => [r.block, r.error.name])).toEqual([[early, 'PrematureCloseError']])
  }, 240_000)
})
