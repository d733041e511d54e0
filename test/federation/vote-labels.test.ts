import { afterEach, describe, expect, it } from 'vitest'
import type { Charter, Vote } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { chartered, errorsFor, inject, measuredVote } from './helpers.ts'

/**
 * A vote's `judgement` and a `decidedBy: policy` are checked by every peer and the audit:
 * the judgement must be the charter's, and the policy only ever votes as the rule decides
 * from the measurement it signed. Signed outside the vote step, as a hostile member would.
 */
describe('a vote\'s judgement and policy labels are checked', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })
  const p = (i: number): Participant => sim!.participants[i] as Participant
  const modelCharter = (c: Charter): Charter => ({ ...c, acceptance: { ...c.acceptance!, judgement: 'model' } })

  async function forge (label: Partial<Vote>, flip: boolean): Promise<{ forged: string, proposal: string }> {
    await sim!.propose(1, [p(0)])
    const proposal = p(0).state.rounds.get(1)?.proposals[0] as string
    const measured = await measuredVote(sim!, p(1), proposal, 'x')
    const forged = await inject(sim!, p(1).identity, { ...measured, ...(flip ? { accept: !measured.accept } : {}), ...label })
    return { forged, proposal }
  }

  it.each([
    ['a model charter, a vote declaring rule judgement', modelCharter, { decidedBy: 'policy', judgement: 'rule' }, true, 'ERR_JUDGEMENT_MISMATCH'],
    ['a model charter, a policy vote against the rule on its own measurement', modelCharter, { decidedBy: 'policy', judgement: 'model' }, true, 'ERR_VOTE_AGAINST_RULE'],
    ['a rule charter, a vote declaring model judgement against the rule', (c: Charter) => c, { decidedBy: 'ollama:qwen3', judgement: 'model' }, true, 'ERR_JUDGEMENT_MISMATCH']
  ] as const)('under %s: every peer refuses it, none counts it, the audit names it', async (_, edit, label, flip, code) => {
    sim = await chartered({ rounds: 1 }, edit)
    const { forged, proposal } = await forge(label, flip)
    expect(errorsFor(sim, forged)).toHaveLength(3)
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([0, 0, 0])
    await sim.closeRound(1)
    const report = await audit(sim.ledger, sim.store)
    expect(report.rejected.map(r => [r.block, r.error.code])).toEqual([[forged, code]])
  })

  // Votes before these checks took the member's own mode, or `rule` from the policy, whatever the charter's: an old run's audit still passes.
  it.each([
    ['a model charter, a policy vote declaring rule judgement as the rule decides', modelCharter, { decidedBy: 'policy', judgement: 'rule' }],
    ['a rule charter, a vote declaring model judgement as the rule decides', (c: Charter) => c, { decidedBy: 'ollama:qwen3', judgement: 'model' }]
  ] as const)('under %s: it stands', async (_, edit, label) => {
    sim = await chartered({ rounds: 1 }, edit)
    const { forged, proposal } = await forge(label, false)
    expect(errorsFor(sim, forged)).toEqual([])
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([1, 1, 1])
    await sim.closeRound(1)
    expect((await audit(sim.ledger, sim.store)).rejected).toEqual([])
  })

  it('under a model charter the policy\'s vote by the rule and a model\'s vote against it both stand', async () => {
    sim = await chartered({ rounds: 1 }, modelCharter)
    const { forged } = await forge({ decidedBy: 'ollama:qwen3', judgement: 'model' }, true)
    expect(errorsFor(sim, forged)).toEqual([])
    const proposal = p(0).state.rounds.get(1)?.proposals[0] as string
    await p(2).vote(proposal, (await p(2).evaluate(proposal)).passes, undefined, { decidedBy: 'policy' })
    await sim.settle()
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([2, 2, 2])
    await sim.closeRound(1)
    expect((await audit(sim.ledger, sim.store)).rejected).toEqual([])
  })
})
