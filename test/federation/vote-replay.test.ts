import { afterEach, describe, expect, it } from 'vitest'
import type { Charter, Decision, Vote } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import { autopilot, type DriverFactory } from '../../src/federation/driver.ts'
import { putModel } from '../../src/federation/content.ts'
import { charterOf } from '../../src/federation/enrol.ts'
import { mapValues } from '../../src/ml/weights.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import type { Identity } from '../../src/identity/index.ts'
import { errorsFor as refusals, inject as injectAs, smallConfig, tempDir } from './helpers.ts'

/**
 * A vote is decided from what its voter measured, by the terms the charter states: whoever
 * holds the vote (every peer, the audit) decides it again and refuses it if its accept does
 * not follow. Whether the measurement itself is true nobody else can check.
 */
describe('votes re-decided from their signed measurement', () => {
  let sim: Simulation
  const p = (i: number): Participant => sim.participants[i] as Participant
  /** Every participant votes only when told, so a test decides what each vote says. */
  const byHand: DriverFactory = async participant => ({ openRound: async (round) => { await participant.propose(round) }, busy: false, idle: async () => {}, close: async () => {} })

  async function start (charter: (c: Charter) => Charter = c => c, driver = byHand): Promise<void> {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver })
    await p(0).publishRecord(charter(await charterOf(sim.config, sim.task, sim.store, sim.participants.map(q => q.did))))
    await sim.settle()
  }
  afterEach(async () => { await sim?.close() })

  const inject = async (who: Identity, record: Parameters<Identity['sign']>[0]): Promise<string> => injectAs(sim, who, record)
  const errorsFor = (block: string): string[] => refusals(sim, block)

  /** agent-1 proposes; agent-3 votes as it measured; agent-2 has measured and not voted. */
  async function proposed (): Promise<{ proposal: string, measured: Vote }> {
    await sim.propose(1, [p(0)])
    const proposal = p(0).state.rounds.get(1)?.proposals[0] as string
    await p(2).vote(proposal, (await p(2).evaluate(proposal)).passes)
    const evaluation = await p(1).evaluate(proposal)
    await sim.settle()
    const measured: Vote = { type: 'vote', federation: sim.config.federation, round: 1, proposal, accept: evaluation.passes, score: evaluation.score, rationale: 'as measured', measurement: evaluation.measurement }
    return { proposal, measured }
  }

  it('refuses, at every peer and in the audit, a vote whose accept contradicts the measurement it signs (it was counted before)', async () => {
    await start()
    const { proposal, measured } = await proposed()
    await expect(p(1).vote(proposal, !measured.accept)).rejects.toMatchObject({ name: 'VoteAgainstRuleError', code: 'ERR_VOTE_AGAINST_RULE' })
    const forged = await inject(p(1).identity, { ...measured, accept: !measured.accept })
    expect(errorsFor(forged)).toEqual(['VoteAgainstRuleError', 'VoteAgainstRuleError', 'VoteAgainstRuleError'])
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([1, 1, 1])

    await sim.closeRound(1)
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, votesReplayed: true, votes: 1 })
    expect(report.rejected.map(r => [r.block, r.type, r.error.code])).toEqual([[forged, 'vote', 'ERR_VOTE_AGAINST_RULE']])
  })

  it('under the classwise rule, refuses at every peer and in the audit an accept whose signed classes the rule rejects, and counts one they pass', async () => {
    await start(c => ({ ...c, acceptance: { ...c.acceptance!, rule: 'classwise', minGain: 0, classRatio: 1.8 } }))
    const { proposal, measured } = await proposed()
    const m = measured.measurement
    if (m === undefined || 'unusable' in m || m.classes === undefined || m.without === undefined) throw new Error('agent-3 signed no class scores')
    const without = m.without
    // Geometry within bounds and the round's combination better with it: only the classes decide.
    const signed = (gains: [number, number]): Vote => ({
      ...measured,
      accept: true,
      measurement: { ...m, combined: without + (3 * gains[0] + gains[1]) / 4, classes: [{ label: 0, n: 3, combined: gains[0], without: 0 }, { label: 1, n: 1, combined: gains[1], without: 0 }], geometry: { normRatio: 1, cosine: 0.5, earlierCosine: -1, historyCosine: -1 } }
    })
    // label 0 gains 0.2 on 3 examples, label 1 loses 0.4 on 1: helps 0.15 < 1.8 × hurts 0.1 (the marginal rule would accept it)
    const flipped = await inject(p(1).identity, signed([0.2, -0.4]))
    expect(errorsFor(flipped)).toEqual(['VoteAgainstRuleError', 'VoteAgainstRuleError', 'VoteAgainstRuleError'])
    // helps 0.15 ≥ 1.8 × hurts 0.05: counted
    const counted = await inject(p(1).identity, signed([0.2, -0.2]))
    expect(errorsFor(counted)).toEqual([])
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([2, 2, 2])

    await sim.closeRound(1)
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, votesReplayed: true, votes: 2 })
    expect(report.rejected.map(r => [r.block, r.error.code])).toEqual([[flipped, 'ERR_VOTE_AGAINST_RULE']])
  })

  it('under the standing rule, holds a proposer rejected in an earlier round to the classwise rule, at every peer and in the audit', async () => {
    await start(c => ({ ...c, acceptance: { ...c.acceptance!, rule: 'standing', minGain: 0, classRatio: 1.8 } }))
    // Round 1: agent-2 signs that the round's combination is worse with agent-1's update, and rejects it.
    const first = await proposed()
    const m1 = first.measured.measurement
    if (m1 === undefined || 'unusable' in m1 || m1.without === undefined) throw new Error('agent-2 measured nothing')
    const rejecting = await inject(p(1).identity, { ...first.measured, accept: false, measurement: { ...m1, combined: m1.without - 0.1 } })
    expect(errorsFor(rejecting)).toEqual([])
    await sim.closeRound(1)
    expect(sim.participants.map(q => q.state.proposals.get(first.proposal)?.decision?.record.accepted)).toEqual([false, false, false])

    // Round 2: agent-1 is in bad standing on every peer; agent-3, none of whose updates is decided yet, new (judged as good).
    await sim.propose(2, [p(0), p(2)])
    const [flipper, honest] = [p(0), p(2)].map(q => [...p(1).state.proposals.values()].find(e => e.signed.record.round === 2 && e.signed.issuer === q.did)?.block as string)
    expect(sim.participants.map(q => [q.state.standing(flipper as string), q.state.standing(honest as string)])).toEqual([['bad', 'new'], ['bad', 'new'], ['bad', 'new']])
    const measure = async (proposal: string): Promise<Vote> => {
      const evaluation = await p(1).evaluate(proposal)
      const m = evaluation.measurement
      if (m === undefined || 'unusable' in m || m.without === undefined) throw new Error('agent-2 measured nothing')
      // label 0 gains 0.2 on 3 examples, label 1 loses 0.4 on 1: the marginal rule accepts (+0.05), the classwise rejects (helps 0.15 < 1.8 × hurts 0.1)
      const measurement = { ...m, combined: m.without + 0.05, classes: [{ label: 0, n: 3, combined: 0.2, without: 0 }, { label: 1, n: 1, combined: -0.4, without: 0 }], geometry: { normRatio: 1, cosine: 0.5, earlierCosine: -1, historyCosine: -1 } }
      return { type: 'vote', federation: sim.config.federation, round: 2, proposal, accept: true, score: evaluation.score, rationale: 'the marginal rule passes it', measurement }
    }
    // agent-2 applies the lenient rule to agent-1: refused everywhere; the same numbers for agent-3 are counted.
    const lenient = await inject(p(1).identity, await measure(flipper as string))
    expect(errorsFor(lenient)).toEqual(['VoteAgainstRuleError', 'VoteAgainstRuleError', 'VoteAgainstRuleError'])
    expect(sim.rejections.get(p(0).name)?.find(r => r.block === lenient)?.error.message).toMatch(/for a proposer in bad standing/)
    const counted = await inject(p(1).identity, await measure(honest as string))
    expect(errorsFor(counted)).toEqual([])
    expect(sim.participants.map(q => [q.state.derive(flipper as string).votes.length, q.state.derive(honest as string).votes.length])).toEqual([[0, 1], [0, 1], [0, 1]])

    await sim.closeRound(2)
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, votesReplayed: true })
    expect(report.rejected.map(r => [r.block, r.error.code])).toEqual([[lenient, 'ERR_VOTE_AGAINST_RULE']])
  })

  it('lists a decision that counts such a vote as refused, as every peer refused it, naming the vote', async () => {
    await start()
    const { proposal, measured } = await proposed()
    const forged = await inject(p(1).identity, { ...measured, accept: !measured.accept })
    const recorder = sim.participants.find(q => q.did === p(0).state.recorder(1)) as Participant
    const honest = p(0).state.derive(proposal)
    const votes = [...honest.votes, forged].sort()
    const accepts = honest.accepts + (measured.accept ? 0 : 1)
    const decision: Decision = { type: 'decision', federation: sim.config.federation, round: 1, proposal, proposer: p(0).did, accepted: accepts >= honest.required, accepts, rejects: votes.length - accepts, required: honest.required, votes }
    const wrong = await inject(recorder.identity, decision)
    expect(errorsFor(wrong)).toEqual(['DerivationMismatchError', 'DerivationMismatchError', 'DerivationMismatchError'])

    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    const listed = report.rejected.find(r => r.block === wrong)
    expect(listed).toMatchObject({ type: 'decision', issuer: recorder.did, error: { name: 'DerivationMismatchError', code: 'ERR_DERIVATION_MISMATCH' } })
    expect(listed?.error.message).toContain(`${forged} (ERR_VOTE_AGAINST_RULE)`)
  })

  // The charter bounds an update's norm at a millionth of the voter's own, so its rule rejects every update.
  const rejectsAll = (judgement: 'model' | 'guarded') => (c: Charter): Charter => ({ ...c, acceptance: { ...c.acceptance!, judgement, robustness: { ...c.acceptance!.robustness!, maxNormRatio: 1e-6 } } })

  it.each([
    ['model', [], 2],
    ['guarded', ['VoteAgainstRuleError', 'VoteAgainstRuleError', 'VoteAgainstRuleError'], 1]
  ] as const)('charter judgement %s: a vote that accepts an update the rule rejects is refused by %j; counted votes %i', async (judgement, refused, counted) => {
    await start(rejectsAll(judgement))
    const { proposal, measured } = await proposed()
    expect(measured.accept).toBe(false)
    // Signed outside the vote step, which would refuse it under guarded: every holder decides it again.
    const accepting = await inject(p(1).identity, { ...measured, accept: true, judgement, decidedBy: 'gguf:x.gguf' })
    expect(errorsFor(accepting)).toEqual(refused)
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([counted, counted, counted])
    await sim.closeRound(1)
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, votesReplayed: true, votes: counted })
    expect(report.rejected.map(r => [r.block, r.error.code])).toEqual(refused.length === 0 ? [] : [[accepting, 'ERR_VOTE_AGAINST_RULE']])
  })

  it('charter judgement guarded: a reject of an update the rule accepts stands, at every peer and in the audit', async () => {
    await start(c => ({ ...c, acceptance: { ...c.acceptance!, judgement: 'guarded' } }))
    const { proposal, measured } = await proposed()
    expect(measured.accept).toBe(true)
    await p(1).vote(proposal, false, 'my own judgement', { decidedBy: 'gguf:x.gguf' })
    await sim.settle()
    expect(sim.participants.map(q => q.state.derive(proposal).rejects)).toEqual([1, 1, 1])
    await sim.closeRound(1)
    expect(await audit(sim.ledger, sim.store)).toMatchObject({ ok: true, votesReplayed: true, votes: 2, rejected: [] })
  })

  it('refuses a vote without its measurement, without the geometry the charter bounds, or accepting what it found unusable', async () => {
    await start()
    const { measured } = await proposed()
    const { measurement, ...bare } = measured
    if (measurement === undefined || 'unusable' in measurement) throw new Error('agent-2 measured nothing')
    const { geometry: _, ...scoresOnly } = measurement
    const unmeasured = await inject(p(1).identity, bare)
    const shapeless = await inject(p(1).identity, { ...bare, measurement: scoresOnly })
    const unusable = await inject(p(1).identity, { ...bare, accept: true, measurement: { unusable: 'ERR_CONTENT_NOT_FOUND' } })
    expect([unmeasured, shapeless, unusable].map(errorsFor)).toEqual([
      ['UnmeasuredVoteError', 'UnmeasuredVoteError', 'UnmeasuredVoteError'],
      ['UnmeasuredVoteError', 'UnmeasuredVoteError', 'UnmeasuredVoteError'],
      ['UnusableUpdateError', 'UnusableUpdateError', 'UnusableUpdateError']
    ])
  })

  it('an update scored NaN or beyond what a vote may sign is rejected as unusable, its votes still signed and counted', async () => {
    await start(c => c, autopilot)
    const global = p(0).globalModel
    if (global === undefined) throw new Error('no global model')
    const huge = await putModel(sim.store, mapValues(global.weights, () => 1e30))
    const proposal = await inject(p(0).identity, { type: 'proposal', federation: sim.config.federation, round: 1, base: global.ref.cid, delta: huge, numSamples: 10 })
    const votes = [...(p(0).state.proposals.get(proposal)?.votes.values() ?? [])].map(v => v.signed.record)
    expect(votes.map(v => [v.accept, v.measurement])).toEqual([[false, { unusable: 'ERR_UNMEASURABLE_UPDATE' }], [false, { unusable: 'ERR_UNMEASURABLE_UPDATE' }]])
  })

  it('members judge by the charter\'s terms, not their own config', async () => {
    // Every member's config bounds an update's norm at 3× its own; the charter at a millionth.
    await start(c => ({ ...c, acceptance: { ...c.acceptance!, robustness: { ...c.acceptance!.robustness!, maxNormRatio: 1e-6 } } }), autopilot)
    await sim.round(1)
    expect([...p(0).state.proposals.values()].map(e => e.decision?.record.accepted)).toEqual([false, false, false])
    const votes = [...p(0).state.proposals.values()].flatMap(e => [...e.votes.values()].map(v => v.signed.record))
    expect(votes).toHaveLength(6)
    expect(votes.every(v => !v.accept && v.rationale.includes('at most 0.000001'))).toBe(true)
    expect(await audit(sim.ledger, sim.store)).toMatchObject({ ok: true, votesReplayed: true, votes: 6, rejected: [] })
  })

  it('under a charter that states no terms, counts votes as signed and reports them not replayable', async () => {
    await start(({ acceptance: _, ...old }) => old)
    const { proposal, measured } = await proposed()
    await p(1).vote(proposal, !measured.accept)
    await sim.settle()
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([2, 2, 2])
    await sim.closeRound(1)
    expect(await audit(sim.ledger, sim.store)).toMatchObject({ ok: true, votesReplayed: false, votes: 2, rejected: [] })
  })
})
