import { createHash } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import { Charter, HumanVote, type Record as ConclaveRecord, type HumanVotes } from '../../src/core/records.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { FederationState } from '../../src/federation/state.ts'
import { confirmReaction } from '../../src/federation/steps/human-vote.ts'
import type { Bus } from '../../src/transport/index.ts'
import { createIdentity, type Identity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { BlockIndex } from '../../src/ledger/dag.ts'
import type { Block } from '../../src/ledger/index.ts'

const CID_A = 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i'
const CID_B = 'bafkreiaxnnnb7qz2focittuqq3ya25q7rcv3bqynnczfzako47346wosmu'
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
const T0 = 1_800_000_000
const ALICE = '@alice:localhost'
const BOB = '@bob:localhost'

let dag: BlockIndex
async function block (who: Identity, record: ConclaveRecord, at = T0): Promise<Block> {
  const jwt = await who.sign(record, { now: at })
  const seq = dag.blocks.length
  const last = dag.blocks.at(-1)
  const b: Block = { id: sha(`${seq}:${jwt}`), seq, parents: last === undefined ? [] : [last.id], record: jwt, time: at, pow: 0 }
  dag.add(b)
  return b
}
const ledger = { descends: async (id: string, ancestor: string) => dag.descends(id, ancestor) }

/** A fresh ledger and state holding the charter of `n` members (researchers Alice and Bob, `terms` added) and member 0's round-1 proposal. */
async function proposed (n: number, terms: Partial<Charter>): Promise<{ members: Identity[], state: FederationState, proposal: Block }> {
  dag = new BlockIndex([])
  const members = Array.from({ length: n }, () => createIdentity(randomSecretKey()))
  const state = new FederationState()
  const founder = members[0] as Identity
  await state.apply(await block(founder, {
    type: 'charter', federation: 'fed', round: 0, members: members.map(m => m.did), quorum: { kind: 'count', count: 2 },
    windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: CID_A, sha256: sha('initial') },
    researchers: [ALICE, BOB], ...terms
  }), { ledger })
  const proposal = await block(founder, { type: 'proposal', federation: 'fed', round: 1, base: CID_A, delta: { cid: CID_B, sha256: sha('delta') }, numSamples: 10 })
  await state.apply(proposal, { ledger })
  return { members, state, proposal }
}

describe('HumanVote record', () => {
  it('names a researcher\'s Matrix account and the reaction\'s event; anything else is refused', () => {
    const vote = { type: 'human-vote', federation: 'fed', round: 1, proposal: 'f'.repeat(64), accept: true, researcher: ALICE, event: '$abc_DEF-123' }
    expect(HumanVote.parse(vote)).toEqual(vote)
    expect(HumanVote.safeParse({ ...vote, researcher: 'alice' }).success).toBe(false)
    expect(HumanVote.safeParse({ ...vote, event: 'abc' }).success).toBe(false)
    expect(HumanVote.safeParse({ ...vote, weight: 5 }).success).toBe(false)
  })
})

/**
 * Researchers' reactions, anchored by a member as human votes: one per researcher and
 * proposal, only for the charter's researchers, within the window, before the decision;
 * counted toward the quorum only where the charter says so.
 */
describe.each<[HumanVotes | undefined]>([[undefined], ['advisory'], ['counted']])('human votes under a charter whose humanVotes is %s', (humanVotes) => {
  let members: Identity[]
  let state: FederationState
  const member = (i: number): Identity => members[i] as Identity
  const counted = humanVotes === 'counted'
  const human = (proposal: string, researcher = ALICE, event = '$reaction1', accept = true): ConclaveRecord =>
    ({ type: 'human-vote', federation: 'fed', round: 1, proposal, accept, researcher, event })
  const apply = async (b: Block) => state.apply(b, { ledger })
  let proposal: Block

  beforeEach(async () => {
    ({ members, state, proposal } = await proposed(3, humanVotes === undefined ? {} : { humanVotes }))
  })

  it(`a researcher's 👍 anchored by a member is on the proposal; ${counted ? 'it counts toward the quorum' : 'it counts for nothing'}, and the decision must say so`, async () => {
    const h = await block(member(1), human(proposal.id))
    await apply(h)
    const v = await block(member(2), { type: 'vote', federation: 'fed', round: 1, proposal: proposal.id, accept: true, score: 0.1, rationale: 'better' })
    await apply(v)
    expect([...state.proposals.get(proposal.id)?.humans.keys() ?? []]).toEqual([ALICE])
    const expected = counted
      ? { accepted: true, accepts: 2, rejects: 0, required: 2, votes: [h.id, v.id].sort() }
      : { accepted: false, accepts: 1, rejects: 0, required: 2, votes: [v.id] }
    expect(state.derive(proposal.id)).toEqual(expected)
    // A recorder who counts the other way is caught, as the audit would.
    const recorder = members.find(m => m.did === state.recorder(1)) as Identity
    const other = counted ? { accepted: false, accepts: 1, votes: [v.id] } : { accepted: true, accepts: 2, votes: [h.id, v.id].sort() }
    await expect(apply(await block(recorder, { type: 'decision', federation: 'fed', round: 1, proposal: proposal.id, proposer: member(0).did, ...expected, ...other }, T0 + 601)))
      .rejects.toMatchObject({ name: 'DerivationMismatchError' })
    await apply(await block(recorder, { type: 'decision', federation: 'fed', round: 1, proposal: proposal.id, proposer: member(0).did, ...expected }, T0 + 601))
    expect(state.proposals.get(proposal.id)?.decision?.record.accepted).toBe(counted)
  })

  it('refuses a stranger\'s reaction: the charter does not name them (NotResearcherError)', async () => {
    await expect(apply(await block(member(1), human(proposal.id, '@mallory:localhost')))).rejects.toMatchObject({ name: 'NotResearcherError', code: 'ERR_NOT_RESEARCHER' })
    expect(state.proposals.get(proposal.id)?.humans.size).toBe(0)
  })

  it('refuses a researcher\'s second vote on the same proposal, whoever anchors it, and the same reaction backing two votes (DuplicateVoteError)', async () => {
    await apply(await block(member(1), human(proposal.id, ALICE, '$first')))
    await expect(apply(await block(member(2), human(proposal.id, ALICE, '$second', false)))).rejects.toMatchObject({ name: 'DuplicateVoteError' })
    await expect(apply(await block(member(2), human(proposal.id, BOB, '$first')))).rejects.toMatchObject({ name: 'DuplicateVoteError' })
    expect([...state.proposals.get(proposal.id)?.humans.values() ?? []].map(h => h.signed.record.accept)).toEqual([true])
  })

  // A standby anchors a reaction it has not seen anchored after its wait (steps/human-vote.ts);
  // the recorder's may still have been on its way. Refused, the honest standby was listed by
  // the audit as if it had forged a vote (found red-teaming).
  it('keeps the same reaction anchored again, by another member, as a copy that counts once; any other difference is still refused', async () => {
    const first = await block(member(1), human(proposal.id, ALICE, '$first'))
    await apply(first)
    await apply(await block(member(2), human(proposal.id, ALICE, '$first')))
    await expect(apply(await block(member(2), human(proposal.id, ALICE, '$first', false)))).rejects.toMatchObject({ name: 'DuplicateVoteError' })
    expect([...state.proposals.get(proposal.id)?.humans.values() ?? []].map(h => h.block)).toEqual([first.id])
    const v = await block(member(2), { type: 'vote', federation: 'fed', round: 1, proposal: proposal.id, accept: true, score: 0.1, rationale: 'better' })
    await apply(v)
    expect(state.derive(proposal.id)).toMatchObject({ accepts: counted ? 2 : 1, votes: counted ? [first.id, v.id].sort() : [v.id] })
  })

  it('refuses a reaction anchored after the decision or past the window (VoteOutsideWindowError), and one anchored by a non-member (NotMemberError)', async () => {
    await expect(apply(await block(member(1), human(proposal.id), T0 + 601))).rejects.toMatchObject({ name: 'VoteOutsideWindowError' })
    await expect(apply(await block(createIdentity(randomSecretKey()), human(proposal.id)))).rejects.toMatchObject({ name: 'NotMemberError' })
    const recorder = members.find(m => m.did === state.recorder(1)) as Identity
    await apply(await block(recorder, { type: 'decision', federation: 'fed', round: 1, proposal: proposal.id, proposer: member(0).did, ...state.derive(proposal.id) }, T0 + 601))
    await expect(apply(await block(member(1), human(proposal.id)))).rejects.toMatchObject({ name: 'VoteOutsideWindowError' })
  })

  it('refuses a reaction on an unknown proposal (UnknownProposalError)', async () => {
    await expect(apply(await block(member(1), human('e'.repeat(64))))).rejects.toMatchObject({ name: 'UnknownProposalError' })
  })
})

/**
 * Under `counted`, one member that anchors a 👍 its researcher never made bought a merge: the
 * researcher signs nothing, so a human vote was counted on one member's word. With
 * `humanWitnesses` w, a reaction counts as its researcher's vote only once w members have
 * anchored it, each of them having seen it in the room: fewer than w hostile members cannot
 * forge one, nor, by anchoring a forged reaction first, keep out the researcher's own.
 */
describe('human votes under a charter that asks two members to witness each (humanWitnesses: 2)', () => {
  let members: Identity[]
  let state: FederationState
  let proposal: Block
  const member = (i: number): Identity => members[i] as Identity
  const human = (event: string, accept = true, researcher = ALICE): ConclaveRecord =>
    ({ type: 'human-vote', federation: 'fed', round: 1, proposal: proposal.id, accept, researcher, event })
  const apply = async (b: Block) => state.apply(b, { ledger })
  const vote = async (i: number): Promise<Block> => block(member(i), { type: 'vote', federation: 'fed', round: 1, proposal: proposal.id, accept: false, score: -0.1, rationale: 'worse' })

  beforeEach(async () => {
    ({ members, state, proposal } = await proposed(4, { humanVotes: 'counted', humanWitnesses: 2 }))
  })

  it('counts a reaction only once two members have anchored it: one hostile member\'s forged 👍 counts for nothing', async () => {
    const forged = await block(member(3), human('$forged'))
    await apply(forged)
    const against = await vote(1)
    await apply(against)
    expect(state.derive(proposal.id)).toEqual({ accepted: false, accepts: 0, rejects: 1, required: 2, votes: [against.id] })
    // A second member anchoring the same reaction makes it the researcher's vote, counted once.
    const second = await block(member(2), human('$forged'))
    await apply(second)
    const third = await block(member(1), human('$forged'))
    await apply(third)
    expect(state.derive(proposal.id)).toEqual({ accepted: false, accepts: 1, rejects: 1, required: 2, votes: [forged.id, against.id].sort() })
    // The audit counts the human vote once, at the anchoring that made it one.
    expect([forged, second, third].map(b => state.countsAsHumanVote(b.id, { proposal: proposal.id, researcher: ALICE }))).toEqual([false, true, false])
  })

  it('a forged reaction anchored first does not keep out the researcher\'s own, which two honest members anchor after it', async () => {
    await apply(await block(member(3), human('$forged', false)))
    const real = await block(member(1), human('$real'))
    await apply(real)
    await apply(await block(member(2), human('$real')))
    expect([...state.proposals.get(proposal.id)?.humans.values() ?? []].map(h => h.signed.record.event)).toEqual(['$real'])
    expect(state.derive(proposal.id)).toMatchObject({ accepts: 1, rejects: 0, votes: [real.id] })
    // Once the researcher's vote stands, no other reaction of theirs on the proposal is taken.
    await expect(apply(await block(member(3), human('$late')))).rejects.toMatchObject({ name: 'DuplicateVoteError' })
  })

  // Found red-teaming: reactions were known by their event alone, so a hostile member citing the
  // real event first, as another 👍/👎, researcher or proposal, had both honest copies refused.
  it.each([
    ['as a 👍 where it is a 👎', { accept: true }],
    ['for another researcher', { researcher: BOB }],
    ['on another proposal', { proposal: 'other' }]
  ])('a hostile member citing the real reaction first %s keeps out neither it nor its honest witnesses', async (_case, poison: { accept?: boolean, researcher?: string, proposal?: string }) => {
    const other = await block(member(1), { type: 'proposal', federation: 'fed', round: 1, base: CID_A, delta: { cid: CID_A, sha256: sha('other delta') }, numSamples: 10 })
    await apply(other)
    const poisoned = human('$real', poison.accept ?? false, poison.researcher ?? ALICE)
    await apply(await block(member(3), { ...poisoned, ...(poison.proposal === undefined ? {} : { proposal: other.id }) }))
    const real = await block(member(1), human('$real', false))
    await apply(real)
    await apply(await block(member(2), human('$real', false)))
    expect([...state.proposals.get(proposal.id)?.humans.entries() ?? []].map(([who, h]) => [who, h.signed.record.event, h.signed.record.accept])).toEqual([[ALICE, '$real', false]])
    expect(state.derive(proposal.id)).toMatchObject({ accepts: 0, rejects: 1, votes: [real.id] })
  })

  it('refuses a member\'s second, different reaction for one researcher on one proposal, and one reaction cited for two votes (DuplicateVoteError)', async () => {
    await apply(await block(member(3), human('$forged-1')))
    await expect(apply(await block(member(3), human('$forged-2')))).rejects.toMatchObject({ name: 'DuplicateVoteError' })
    await expect(apply(await block(member(3), human('$forged-1', false)))).rejects.toMatchObject({ name: 'DuplicateVoteError' })
    // A reaction that is a researcher's vote backs no other.
    await apply(await block(member(1), human('$real')))
    await apply(await block(member(2), human('$real')))
    await expect(apply(await block(member(1), human('$real', true, BOB)))).rejects.toMatchObject({ name: 'DuplicateVoteError' })
  })

  it('is a charter term no larger than the members', async () => {
    const charter = { type: 'charter', federation: 'fed', round: 0, members: members.map(m => m.did), quorum: { kind: 'count', count: 2 }, windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: CID_A, sha256: sha('initial') } }
    expect(Charter.safeParse({ ...charter, humanWitnesses: 4 }).success).toBe(true)
    expect(Charter.safeParse({ ...charter, humanWitnesses: 5 }).success).toBe(false)
    expect(Charter.safeParse({ ...charter, humanWitnesses: 0 }).success).toBe(false)
  })
})

describe('a charter that names no researcher', () => {
  it('takes no human vote (NotResearcherError)', async () => {
    dag = new BlockIndex([])
    const [a, b] = [createIdentity(randomSecretKey()), createIdentity(randomSecretKey())]
    const state = new FederationState()
    await state.apply(await block(a, { type: 'charter', federation: 'fed', round: 0, members: [a.did, b.did], quorum: { kind: 'count', count: 1 }, windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: CID_A, sha256: sha('initial') } }), { ledger })
    const p = await block(a, { type: 'proposal', federation: 'fed', round: 1, base: CID_A, delta: { cid: CID_B, sha256: sha('delta') }, numSamples: 10 })
    await state.apply(p, { ledger })
    await expect(state.apply(await block(b, { type: 'human-vote', federation: 'fed', round: 1, proposal: p.id, accept: true, researcher: ALICE, event: '$r' }), { ledger }))
      .rejects.toMatchObject({ name: 'NotResearcherError' })
  })
})

describe('asking the room whether it backs a human vote', () => {
  const vote = { type: 'human-vote' as const, federation: 'fed', round: 1, proposal: 'p'.repeat(64), accept: true, researcher: ALICE, event: '$r1' }
  const room = new Map([
    ['$r1', { from: ALICE, key: '👍️', proposal: 'p'.repeat(64) }],
    ['$bob', { from: BOB, key: '👍', proposal: 'p'.repeat(64) }],
    ['$down', { from: ALICE, key: '👎', proposal: 'p'.repeat(64) }],
    ['$other', { from: ALICE, key: '👍', proposal: 'q'.repeat(64) }]
  ])
  const ask = async (event: string): Promise<string[]> => {
    const reasons: string[] = []
    const bus = { reaction: async (_room: string, id: string) => room.get(id) } as unknown as Bus
    await confirmReaction({ bus, room: 'fed', name: 'agent-1', logger: silentLogger }, { block: 'b'.repeat(64), record: { ...vote, event } }, { onProgress: e => { if (e.type === 'conclave:human-vote:unconfirmed') reasons.push(e.detail.reason) } })
    return reasons
  }

  it('confirms the researcher\'s own 👍 on that proposal, and names every mismatch', async () => {
    expect(await ask('$r1')).toEqual([])
    expect(await ask('$none')).toEqual(['the room holds no reaction $none'])
    expect(await ask('$bob')).toEqual([`reaction $bob was sent by ${BOB}, not ${ALICE}`])
    expect(await ask('$down')).toEqual(['reaction $down is 👎, not a 👍'])
    expect(await ask('$other')).toEqual([`reaction $other is not on proposal ${'p'.repeat(64)}'s notice`])
  })
})
