import { createHash } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import type { Record as ConclaveRecord } from '../../src/core/records.ts'
import { FederationState } from '../../src/federation/state.ts'
import { createIdentity, type Identity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { BlockIndex } from '../../src/ledger/dag.ts'
import type { Block } from '../../src/ledger/index.ts'
import { contentCid } from '../../src/storage/unixfs-settings.ts'

const CID_A = 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i'
const CID_B = 'bafkreiaxnnnb7qz2focittuqq3ya25q7rcv3bqynnczfzako47346wosmu'
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
const T0 = 1_800_000_000
/** Past the charter's 600 s window of a proposal anchored at T0: a decision may come then whoever has voted. */
const CLOSED = T0 + 601

/**
 * Blocks by hand: the reducer's rules do not depend on which ledger produced them. Each
 * approves the one made before it (a chain, as one writer's tangle is), unless told otherwise.
 */
let dag: BlockIndex
async function block (who: Identity, record: ConclaveRecord, at = T0, options: { signedAt?: number, parents?: string[] } = {}): Promise<Block> {
  const jwt = await who.sign(record, { now: options.signedAt ?? at })
  return blockOf(jwt, at, options.parents)
}
function blockOf (jwt: string, at = T0, parents?: string[]): Block {
  const seq = dag.blocks.length
  const last = dag.blocks.at(-1)
  const b: Block = { id: sha(`${seq}:${jwt}`), seq, parents: parents ?? (last === undefined ? [] : [last.id]), record: jwt, time: at, pow: 0 }
  dag.add(b)
  return b
}
/** The ledger the blocks are on, as the state asks it about their order. */
const ledger = { descends: async (id: string, ancestor: string) => dag.descends(id, ancestor) }

describe('FederationState', () => {
  let members: Identity[]
  let state: FederationState
  const [a, b, c] = [0, 1, 2]
  const member = (i: number): Identity => members[i] as Identity

  const proposal = (round = 1): ConclaveRecord => ({ type: 'proposal', federation: 'fed', round, base: CID_A, delta: { cid: CID_B, sha256: sha('delta') }, numSamples: 10 })
  const vote = (proposalId: string, accept = true): ConclaveRecord => ({ type: 'vote', federation: 'fed', round: 1, proposal: proposalId, accept, score: accept ? 0.1 : -0.1, rationale: 'measured on my validation split' })

  beforeEach(async () => {
    dag = new BlockIndex([])
    members = [0, 1, 2].map(() => createIdentity(randomSecretKey()))
    state = new FederationState()
    await state.apply(await block(member(a), {
      type: 'charter', federation: 'fed', round: 0, members: members.map(m => m.did), quorum: { kind: 'count', count: 2 },
      windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: CID_A, sha256: sha('initial') }
    }), { ledger })
  })

  it('starts from the charter: members, quorum, global model', () => {
    expect(state.members).toEqual(new Set(members.map(m => m.did)))
    expect(state.required).toBe(2)
    expect(state.global).toEqual({ round: 0, model: { cid: CID_A, sha256: sha('initial') } })
  })

  it('tallies votes into a decision and tracks reputation', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    const v1 = await block(member(b), vote(p.id))
    const v2 = await block(member(c), vote(p.id))
    await state.apply(v1, { ledger })
    await state.apply(v2, { ledger })
    expect(state.derive(p.id)).toEqual({ accepted: true, accepts: 2, rejects: 0, required: 2, votes: [v1.id, v2.id].sort() })
    const recorder = members.find(m => m.did === state.recorder(1)) as Identity
    await state.apply(await block(recorder, { type: 'decision', federation: 'fed', round: 1, proposal: p.id, proposer: member(a).did, ...state.derive(p.id) }, CLOSED), { ledger })
    expect(state.reputation.get(member(a).did)).toEqual({ accepted: 1, rejected: 0, votes: 0 })
    expect(state.accepted(1).map(e => e.block)).toEqual([p.id])
  })

  it('rejects a vote signed by a non-member (NotMemberError)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    const stranger = createIdentity(randomSecretKey())
    await expect(state.apply(await block(stranger, vote(p.id)), { ledger })).rejects.toMatchObject({ name: 'NotMemberError' })
  })

  it('rejects a replayed vote, the same signed record anchored again (ReplayedNonceError)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    const v = await block(member(b), vote(p.id))
    await state.apply(v, { ledger })
    await expect(state.apply(blockOf(v.record), { ledger })).rejects.toMatchObject({ name: 'ReplayedNonceError' })
  })

  it('rejects a second vote by the same DID (DuplicateVoteError)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    await state.apply(await block(member(b), vote(p.id, true)), { ledger })
    await expect(state.apply(await block(member(b), vote(p.id, false)), { ledger })).rejects.toMatchObject({ name: 'DuplicateVoteError' })
    expect(state.derive(p.id).accepts).toBe(1)
  })

  it('rejects a vote on an unknown proposal (UnknownProposalError)', async () => {
    await expect(state.apply(await block(member(b), vote('f'.repeat(64))), { ledger })).rejects.toMatchObject({ name: 'UnknownProposalError' })
  })

  it('rejects a vote on one\'s own proposal (SelfVoteError)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    await expect(state.apply(await block(member(a), vote(p.id)), { ledger })).rejects.toMatchObject({ name: 'SelfVoteError' })
  })

  it('rejects a vote after the validation window (VoteOutsideWindowError)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    const late = T0 + 601
    await expect(state.apply(await block(member(b), vote(p.id), late), { ledger })).rejects.toMatchObject({ name: 'VoteOutsideWindowError' })
  })

  it('times a vote by the blocks, not by its signer: one anchored 2,000 s after its proposal but signed as if 10 s after is refused (RecordTimeMismatchError)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    const late = T0 + 2000
    const backdated = await block(member(b), vote(p.id), late, { signedAt: T0 + 10 })
    await expect(state.apply(backdated, { ledger })).rejects.toMatchObject({ name: 'RecordTimeMismatchError', code: 'ERR_RECORD_TIME_MISMATCH' })
    expect(state.derive(p.id).votes).toEqual([])
  })

  // Tried and taken back: dating a vote no earlier than the blocks before it in the ledger's
  // order made copies of a replicated ledger, which may hold a block dated ahead at different
  // places, count different votes (found red-teaming).
  it('counts a vote by its own block whatever unrelated blocks came before it: copies holding them in other orders count the same votes', async () => {
    const p = await block(member(a), proposal())
    const ahead = await block(member(c), { type: 'proposal', federation: 'fed', round: 1, base: CID_A, delta: { cid: CID_A, sha256: sha('other') }, numSamples: 10 }, T0 + 620, { parents: [p.id] })
    const v = await block(member(b), vote(p.id), T0 + 559, { parents: [p.id] })
    const charter = dag.blocks[0] as Block
    const copies = [[charter, p, ahead, v], [charter, p, v, ahead]]
    const counted: string[][] = []
    for (const order of copies) {
      const copy = new FederationState()
      for (const b of order) await copy.apply(b, { ledger })
      counted.push(copy.derive(p.id).votes)
    }
    expect(counted).toEqual([[v.id], [v.id]])
  })

  it('refuses any record signed further from its block\'s time than the skew allows, either way (RecordTimeMismatchError; signed after it: not yet valid when anchored, ExpiredRecordError)', async () => {
    await expect(state.apply(await block(member(a), proposal(), T0, { signedAt: T0 - 3000 }), { ledger })).rejects.toMatchObject({ name: 'RecordTimeMismatchError' })
    await expect(state.apply(await block(member(a), proposal(), T0, { signedAt: T0 + 61 }), { ledger })).rejects.toMatchObject({ name: 'ExpiredRecordError' })
    await state.apply(await block(member(a), proposal(), T0 + 30, { signedAt: T0 }), { ledger })
  })

  it('counts a vote only when its block descends from its proposal\'s block and comes within the window of it (VoteOutsideWindowError)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    // A sibling of the proposal's block: not ordered after it by the ledger.
    const beside = await block(member(b), vote(p.id), T0, { parents: p.parents })
    await expect(state.apply(beside, { ledger })).rejects.toMatchObject({ name: 'VoteOutsideWindowError' })
    const last = T0 + 600
    await state.apply(await block(member(c), vote(p.id), last, { parents: [beside.id, p.id] }), { ledger })
    expect(state.derive(p.id).accepts).toBe(1)
  })

  it('rejects a proposal for another round, from another base model, or a second one by the same member', async () => {
    await expect(state.apply(await block(member(a), proposal(2)), { ledger })).rejects.toMatchObject({ name: 'WrongRoundError', code: 'ERR_WRONG_ROUND' })
    await expect(state.apply(await block(member(a), { ...proposal(), base: CID_B } as ConclaveRecord), { ledger })).rejects.toMatchObject({ name: 'WrongBaseModelError', code: 'ERR_WRONG_BASE_MODEL' })
    await state.apply(await block(member(a), proposal()), { ledger })
    await expect(state.apply(await block(member(a), proposal()), { ledger })).rejects.toMatchObject({ name: 'AlreadyProposedError', code: 'ERR_ALREADY_PROPOSED' })
  })

  it('rejects a decision that the votes do not imply (DerivationMismatchError) or from a non-recorder', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    await state.apply(await block(member(b), vote(p.id, false)), { ledger })
    const recorder = members.find(m => m.did === state.recorder(1)) as Identity
    const other = members.find(m => m.did !== state.recorder(1)) as Identity
    const lie = { type: 'decision', federation: 'fed', round: 1, proposal: p.id, proposer: member(a).did, ...state.derive(p.id), accepted: true } as ConclaveRecord
    await expect(state.apply(await block(recorder, lie, CLOSED), { ledger })).rejects.toMatchObject({ name: 'DerivationMismatchError' })
    const honest = { type: 'decision', federation: 'fed', round: 1, proposal: p.id, proposer: member(a).did, ...state.derive(p.id) } as ConclaveRecord
    await expect(state.apply(await block(other, honest, CLOSED), { ledger })).rejects.toMatchObject({ name: 'NotRecorderError', code: 'ERR_NOT_RECORDER' })
    await expect(state.apply(await block(recorder, honest, T0 + 600), { ledger })).rejects.toMatchObject({ name: 'PrematureDecisionError', code: 'ERR_PREMATURE_DECISION' })
    await state.apply(await block(recorder, honest, CLOSED), { ledger })
    expect(state.proposals.get(p.id)?.decision?.record.accepted).toBe(false)
  })

  it('lets the members after the recorder record in turn, a window apart, once its round is a window past its last proposal\'s (NotRecorderError before)', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    expect([state.standbyAt(1, 1), state.standbyAt(1, 2), state.standbyAt(1, 3)]).toEqual([T0 + 1200, T0 + 1800, undefined])
    const [first, second] = [1, 2].map(rank => members.find(m => m.did === state.standby(1, rank)) as Identity) as [Identity, Identity]
    expect(new Set([state.recorder(1), first.did, second.did]).size).toBe(3)
    const decision = { type: 'decision', federation: 'fed', round: 1, proposal: p.id, proposer: member(a).did, ...state.derive(p.id) } as ConclaveRecord
    await expect(state.apply(await block(first, decision, T0 + 1199), { ledger })).rejects.toMatchObject({ name: 'NotRecorderError' })
    await expect(state.apply(await block(second, decision, T0 + 1200), { ledger })).rejects.toMatchObject({ name: 'NotRecorderError' })
    await state.apply(await block(first, decision, T0 + 1200), { ledger })
    const checkpoint: ConclaveRecord = { type: 'checkpoint', federation: 'fed', round: 1, parent: CID_A, model: { cid: CID_B, sha256: sha('next') }, merged: [] }
    await state.apply(await block(second, checkpoint, T0 + 1800), { ledger })
    // Round 2 opened at T0 + 1800: with no proposal yet, its first standby waits a window for them and a window after.
    expect(state.standbyAt(2, 1)).toBe(T0 + 3000)
  })

  it('refuses a checkpoint before every proposal is decided, or one that merges the wrong set', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    const recorder = members.find(m => m.did === state.recorder(1)) as Identity
    const checkpoint = (merged: string[]): ConclaveRecord => ({ type: 'checkpoint', federation: 'fed', round: 1, parent: CID_A, model: { cid: CID_B, sha256: sha('next') }, merged })
    await expect(state.apply(await block(recorder, checkpoint([]), CLOSED), { ledger })).rejects.toMatchObject({ name: 'UndecidedRoundError', code: 'ERR_UNDECIDED_ROUND' })
    await state.apply(await block(recorder, { type: 'decision', federation: 'fed', round: 1, proposal: p.id, proposer: member(a).did, ...state.derive(p.id) }, CLOSED), { ledger })
    await expect(state.apply(await block(recorder, checkpoint([p.id]), CLOSED), { ledger })).rejects.toMatchObject({ name: 'DerivationMismatchError' })
    await state.apply(await block(recorder, checkpoint([]), CLOSED), { ledger })
    expect(state.global).toEqual({ round: 1, model: { cid: CID_B, sha256: sha('next') } })
  })

  it('refuses a decision or checkpoint before every member proposed and before the round has been open a window (PrematureCloseError); once all proposed, at once', async () => {
    const recorder = members.find(m => m.did === state.recorder(1)) as Identity
    const empty: ConclaveRecord = { type: 'checkpoint', federation: 'fed', round: 1, parent: CID_A, model: { cid: CID_A, sha256: sha('initial') }, merged: [] }
    await expect(state.apply(await block(recorder, empty), { ledger })).rejects.toMatchObject({ name: 'PrematureCloseError', code: 'ERR_PREMATURE_CLOSE' })
    const own = async (i: number): Promise<ConclaveRecord> => ({ type: 'proposal', federation: 'fed', round: 1, base: CID_A, delta: { cid: await contentCid(Buffer.from(`delta ${i}`)), sha256: sha(`delta ${i}`) }, numSamples: 10 })
    const [p, q, r] = [await block(member(a), await own(a)), await block(member(b), await own(b)), await block(member(c), await own(c))]
    await state.apply(p, { ledger })
    const decision = (id: string, proposer: Identity): ConclaveRecord => ({ type: 'decision', federation: 'fed', round: 1, proposal: id, proposer: proposer.did, ...state.derive(id) })
    for (const [voter, at] of [[member(b), T0], [member(c), T0]] as const) await state.apply(await block(voter, vote(p.id), at), { ledger })
    await expect(state.apply(await block(recorder, decision(p.id, member(a))), { ledger })).rejects.toMatchObject({ name: 'PrematureCloseError' })
    expect(state.closableAt(1)).toBeGreaterThan(T0)
    await state.apply(q, { ledger })
    await state.apply(r, { ledger })
    expect(state.closableAt(1)).toBe(-Infinity)
    await state.apply(await block(recorder, decision(p.id, member(a))), { ledger })
    expect(state.proposals.get(p.id)?.decision).toBeDefined()
  })

  it('changes nothing when a record is rejected', async () => {
    const p = await block(member(a), proposal())
    await state.apply(p, { ledger })
    const before = JSON.stringify([...state.reputation], null, 0) + state.derive(p.id).votes.length
    await state.apply(await block(member(b), vote('e'.repeat(64))), { ledger }).catch(() => undefined)
    expect(JSON.stringify([...state.reputation], null, 0) + state.derive(p.id).votes.length).toBe(before)
  })
})

describe('FederationState with a committee', () => {
  let members: Identity[]
  let state: FederationState
  const proposal: ConclaveRecord = { type: 'proposal', federation: 'fed', round: 1, base: CID_A, delta: { cid: CID_B, sha256: sha('delta') }, numSamples: 10 }
  const vote = (proposalId: string): ConclaveRecord => ({ type: 'vote', federation: 'fed', round: 1, proposal: proposalId, accept: true, score: 0.1, rationale: 'measured on my validation split' })
  const who = (did: string): Identity => members.find(m => m.did === did) as Identity

  let charter: Block

  beforeEach(async () => {
    dag = new BlockIndex([])
    members = [0, 1, 2, 3, 4, 5].map(() => createIdentity(randomSecretKey()))
    state = new FederationState()
    charter = await block(members[0] as Identity, {
      type: 'charter', federation: 'fed', round: 0, members: members.map(m => m.did), quorum: { kind: 'fraction', fraction: 0.5 }, committee: 3,
      windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: CID_A, sha256: sha('initial') }
    })
    await state.apply(charter, { ledger })
  })

  /** Member 0's proposal, its committee, and the peers left out of it. */
  async function proposed (): Promise<{ p: Block, committee: string[], outside: Identity[] }> {
    const p = await block(members[0] as Identity, proposal)
    await state.apply(p, { ledger })
    const committee = state.judges(p.id)
    return { p, committee, outside: members.slice(1).filter(m => !committee.includes(m.did)) }
  }

  it('draws k of the proposer\'s peers and counts the quorum within them (half of 3 is 2)', async () => {
    const { committee, outside } = await proposed()
    expect(committee).toHaveLength(3)
    expect(committee).not.toContain(members[0]?.did)
    expect(outside).toHaveLength(2)
    expect(state.required).toBe(2)
  })

  it('refuses a vote by a member the committee was not drawn from (NotOnCommitteeError), and counts the committee\'s', async () => {
    const { p, committee, outside } = await proposed()
    const intruder = await block(outside[0] as Identity, vote(p.id))
    await expect(state.apply(intruder, { ledger })).rejects.toMatchObject({ name: 'NotOnCommitteeError', code: 'ERR_NOT_ON_COMMITTEE' })
    for (const did of committee) await state.apply(await block(who(did), vote(p.id)), { ledger })
    expect(state.derive(p.id)).toMatchObject({ accepted: true, accepts: 3, required: 2, committee })
  })

  it('refuses a decision that names another committee than the draw (DerivationMismatchError)', async () => {
    const { p, committee, outside } = await proposed()
    await state.apply(await block(who(committee[0] as string), vote(p.id)), { ledger })
    const recorder = who(state.recorder(1))
    const decision = { type: 'decision', federation: 'fed', round: 1, proposal: p.id, proposer: members[0]?.did, ...state.derive(p.id) }
    const forged = { ...decision, committee: [committee[0], ...outside.map(m => m.did)] } as ConclaveRecord
    await expect(state.apply(await block(recorder, forged, CLOSED), { ledger })).rejects.toMatchObject({ name: 'DerivationMismatchError' })
    const unnamed = { ...decision, committee: undefined } as ConclaveRecord
    await expect(state.apply(await block(recorder, unnamed, CLOSED), { ledger })).rejects.toMatchObject({ name: 'DerivationMismatchError' })
    await state.apply(await block(recorder, decision as ConclaveRecord, CLOSED), { ledger })
    expect(state.proposals.get(p.id)?.decision?.record.committee).toEqual(committee)
  })

  it('gives a proposer nothing to grind: 30 versions of its proposal (other content, sample counts, nonces, block ids) all draw one committee', async () => {
    const drawn = new Set<string>()
    for (let i = 0; i < 30; i++) {
      const fresh = new FederationState()
      await fresh.apply(charter, { ledger })
      const variant = await block(members[0] as Identity, { ...proposal, delta: { cid: CID_B, sha256: sha(`delta ${i}`) }, numSamples: 10 + i } as ConclaveRecord)
      await fresh.apply(variant, { ledger })
      drawn.add(fresh.judges(variant.id).join(' '))
    }
    expect(drawn.size).toBe(1)
  })
})
