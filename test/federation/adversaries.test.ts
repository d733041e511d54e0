import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import { putModel } from '../../src/federation/content.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { createIdentity, type Identity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { signJwt } from '../../src/identity/jwt.ts'
import { byHand, errorsFor as refusals, inject as injectAs, smallConfig, tempDir } from './helpers.ts'

/**
 * Hostile input arrives while a real (embedded) federation runs a round. Each bad record
 * must be refused by name by every honest participant, and the round must still end in
 * one agreed, auditable model.
 */
describe('a federation under hostile records', () => {
  let sim: Simulation
  const [agent1, agent2, agent3] = [0, 1, 2]
  const p = (i: number): Participant => sim.participants[i] as Participant

  const inject = async (who: Identity, record: Parameters<Identity['sign']>[0]): Promise<string> => injectAs(sim, who, record)
  const errorsFor = (block: string): string[] => refusals(sim, block)

  const vote = (proposal: string, accept = true): Vote =>
    ({ type: 'vote', federation: sim.config.federation, round: 1, proposal, accept, score: 0.5, rationale: 'trust me' })

  beforeEach(async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir() })
    await sim.charter()
  })
  afterEach(async () => { await sim?.close() })

  async function firstProposal (): Promise<string> {
    await sim.propose(1, [p(agent1), p(agent2)])
    const id = sim.participants[0]?.state.rounds.get(1)?.proposals[0]
    if (id === undefined) throw new Error('no proposal')
    return id
  }

  async function finishAndAudit (): Promise<Awaited<ReturnType<typeof audit>>> {
    const report = await sim.closeRound(1)
    expect(report.proposals).toBeGreaterThan(0)
    return audit(sim.ledger, sim.store)
  }

  it('refuses a vote signed by a non-member (NotMemberError)', async () => {
    const proposal = await firstProposal()
    const stranger = createIdentity(randomSecretKey())
    const block = await inject(stranger, vote(proposal))
    expect(errorsFor(block)).toEqual(['NotMemberError', 'NotMemberError', 'NotMemberError'])
    const result = await finishAndAudit()
    expect(result.ok).toBe(true)
    expect(result.rejected.map(r => [r.block, r.error.name])).toEqual([[block, 'NotMemberError']])
  })

  it('refuses a second vote by the same DID (DuplicateVoteError) and keeps the first', async () => {
    const proposal = await firstProposal()
    const voter = p(agent3)
    const before = sim.participants.map(q => q.state.derive(proposal))
    const block = await inject(voter.identity, vote(proposal, false))
    expect(errorsFor(block)).toEqual(['DuplicateVoteError', 'DuplicateVoteError', 'DuplicateVoteError'])
    expect(sim.participants.map(q => q.state.derive(proposal))).toEqual(before)
    expect((await finishAndAudit()).ok).toBe(true)
  })

  it('refuses a replayed vote: the ledger will not anchor it twice, and an unanchored announcement is NotAnchoredError', async () => {
    const proposal = await firstProposal()
    const voteEntry = [...(p(agent1).state.proposals.get(proposal)?.votes.values() ?? [])][0]
    expect(voteEntry).toBeDefined()
    const jwt = voteEntry?.signed.jwt as string
    await expect(sim.ledger.append(jwt)).rejects.toMatchObject({ name: expect.stringMatching(/Error$/) })
    await sim.bus.publish(sim.config.federation, { kind: 'record', block: 'f'.repeat(64), jwt })
    await sim.settle()
    expect(errorsFor('f'.repeat(64))).toEqual(['NotAnchoredError', 'NotAnchoredError', 'NotAnchoredError'])
    expect((await finishAndAudit()).ok).toBe(true)
  })

  it('refuses a vote on an unknown proposal (UnknownProposalError)', async () => {
    await firstProposal()
    const block = await inject(p(agent2).identity, vote('e'.repeat(64)))
    expect(errorsFor(block)).toEqual(['UnknownProposalError', 'UnknownProposalError', 'UnknownProposalError'])
    expect((await finishAndAudit()).ok).toBe(true)
  })

  it('rejects a proposal whose content does not hash to what it claims (ContentMismatchError), and goes on', async () => {
    await firstProposal()
    const liar = p(agent3)
    const global = liar.globalModel
    if (global === undefined) throw new Error('no global model')
    const real = await putModel(sim.store, global.weights)
    const block = await inject(liar.identity, {
      type: 'proposal', federation: sim.config.federation, round: 1, base: global.ref.cid,
      delta: { cid: real.cid, sha256: '0'.repeat(64) }, numSamples: 100
    })
    expect(errorsFor(block)).toEqual(['ContentMismatchError', 'ContentMismatchError'])
    const votes = [...(p(agent1).state.proposals.get(block)?.votes.values() ?? [])].map(v => v.signed.record)
    expect(votes.map(v => [v.accept, v.rationale])).toEqual([[false, 'cannot use this update: ERR_CONTENT_MISMATCH; reject'], [false, 'cannot use this update: ERR_CONTENT_MISMATCH; reject']])
    const result = await finishAndAudit()
    expect(result.ok).toBe(true)
    expect(p(agent1).state.proposals.get(block)?.decision?.record.accepted).toBe(false)
  })

  // Found red-teaming: a string of CID letters that names no CID passed the record's schema,
  // and the audit took the failed read of its content for damage: one member's proposal failed
  // every audit of its run, and export with it. Now no ledger anchors it (every copy verifies a
  // record's schema as it takes a block), and the run goes on.
  it('refuses to anchor a proposal naming a CID that does not parse (InvalidRecordError); the round and its audit go on', async () => {
    await sim.propose(1, [p(agent1), p(agent2)])
    const base = p(agent3).state.global?.model.cid as string
    const record = { type: 'proposal', federation: sim.config.federation, round: 1, base, delta: { cid: 'b' + 'a'.repeat(58), sha256: 'a'.repeat(64) }, numSamples: 10 }
    // Signed as a hostile member's own code would sign it: the library refuses to.
    await expect(p(agent3).identity.sign(record as Parameters<Identity['sign']>[0])).rejects.toMatchObject({ name: 'ZodError' })
    const iat = sim.now()
    const jwt = await signJwt(p(agent3).identity, { ...record, iat, exp: iat + 3600, jti: randomBytes(16).toString('hex') })
    await expect(sim.ledger.append(jwt)).rejects.toMatchObject({ name: 'InvalidRecordError', message: expect.stringContaining('expected a base32 CIDv1') })
    const result = await finishAndAudit()
    expect(result).toMatchObject({ ok: true, rejected: [] })
  })
})

/**
 * A vote's window is measured on the ledger: from its proposal's block to its own block,
 * by the times the ledger gave them, never by the `iat` the voter signed.
 */
describe('votes timed by the ledger, not by their signers', () => {
  let sim: Simulation
  const p = (i: number): Participant => sim.participants[i] as Participant
  /** Every participant votes only when told: nobody's honest vote gets in the way of a late one. */

  beforeEach(async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), driver: byHand })
    await sim.charter()
  })
  afterEach(async () => {
    vi.useRealTimers()
    await sim?.close()
  })

  it('refuses, at every peer and in the audit, a vote anchored 2,000 s after its proposal but signed 10 s after it', async () => {
    await sim.propose(1, [p(0)])
    const proposal = p(0).state.rounds.get(1)?.proposals[0] as string
    const proposed = (await sim.ledger.get(proposal))?.time as number
    await p(1).evaluate(proposal)
    await p(1).vote(proposal, true)
    await sim.settle()

    // 2,000 s later by the ledger's clock (and everyone's), with a window of 600 s.
    vi.useFakeTimers({ toFake: ['Date'], now: (proposed + 2000) * 1000 })
    const record: Vote = { type: 'vote', federation: sim.config.federation, round: 1, proposal, accept: true, score: 0.5, rationale: 'I was on time, look at my iat' }
    const announce = async (jwt: string): Promise<string> => {
      const block = await sim.ledger.append(jwt)
      await sim.bus.publish(sim.config.federation, { kind: 'record', block: block.id, jwt })
      await sim.settle()
      return block.id
    }
    const backdated = await announce(await p(2).identity.sign(record, { now: proposed + 10 }))
    const honestlyLate = await announce(await p(2).identity.sign(record))
    const errorsFor = (block: string): string[] => refusals(sim, block)
    expect(errorsFor(backdated)).toEqual(['RecordTimeMismatchError', 'RecordTimeMismatchError', 'RecordTimeMismatchError'])
    expect(errorsFor(honestlyLate)).toEqual(['VoteOutsideWindowError', 'VoteOutsideWindowError', 'VoteOutsideWindowError'])
    expect(sim.participants.map(q => q.state.derive(proposal).accepts)).toEqual([1, 1, 1])

    await sim.closeRound(1)
    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    expect(report.rejected.map(r => [r.block, r.error.name])).toEqual([[backdated, 'RecordTimeMismatchError'], [honestlyLate, 'VoteOutsideWindowError']])
    expect(p(0).state.proposals.get(proposal)?.decision?.record.votes).toHaveLength(1)
  })
})
