import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Record as ConclaveRecord } from '../../src/core/records.ts'
import { RoundLoop, wallClock, type Clock, type Seat } from '../../src/federation/round-loop.ts'
import { FederationState } from '../../src/federation/state.ts'
import { createIdentity, type Identity } from '../../src/identity/index.ts'
import { BlockIndex } from '../../src/ledger/dag.ts'
import type { Block } from '../../src/ledger/index.ts'
import { contentCid } from '../../src/storage/unixfs-settings.ts'

describe('a member process\'s clock', () => {
  const participant = { idle: async () => {} }

  it('waits until done, or until the time is up', async () => {
    let polls = 0
    expect(await wallClock(participant, { pollMs: 5 }).until(() => ++polls === 3, 60)).toBe(true)
    expect(await wallClock(participant, { pollMs: 5 }).until(() => false, 0.05)).toBe(false)
  })

  // An agent whose turn hit a bug: the round would otherwise wait out its window (half an hour) before the member ends.
  it('rethrows its driver\'s failure at the next poll, not once the window has passed', async () => {
    const bug = new TypeError('a plugin bug')
    const driver: { failure?: unknown } = {}
    setTimeout(() => { driver.failure = bug }, 20)
    // (A window of 1800 s: it rejects within the test's few seconds, or the test times out.)
    await expect(wallClock(participant, { pollMs: 5, driver }).until(() => false, 1800)).rejects.toBe(bug)
  })
})

/**
 * A member process whose peer recorded the round while it waited for the round's votes, one
 * member having proposed nothing: it read when the round may close after the checkpoint had
 * moved the round on, took the next round's opening for this one's, and waited a window
 * more (found red-teaming the round-closing rule).
 */
describe('the round loop of a member whose peer already checkpointed the round', () => {
  it('waits nothing more once the checkpoint is in', async () => {
    const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
    const [T, W] = [1_800_000_000, 600]
    const dag = new BlockIndex([])
    const ledger = { descends: async (id: string, ancestor: string) => dag.descends(id, ancestor) }
    const block = async (who: Identity, record: ConclaveRecord, at: number): Promise<Block> => {
      const jwt = await who.sign(record, { now: at })
      const last = dag.blocks.at(-1)
      const b: Block = { id: sha(`${dag.blocks.length}:${jwt}`), seq: dag.blocks.length, parents: last === undefined ? [] : [last.id], record: jwt, time: at, pow: 0 }
      dag.add(b)
      return b
    }
    const apply = async (b: Block): Promise<void> => { await state.apply(b, { ledger }) }
    const ids = [1, 2, 3].map(i => createIdentity(new Uint8Array(32).fill(i)))
    const cid = async (text: string): Promise<string> => contentCid(Buffer.from(text))
    const state = new FederationState()
    await apply(await block(ids[0] as Identity, { type: 'charter', federation: 'fed', round: 0, members: ids.map(m => m.did), quorum: { kind: 'count', count: 1 }, windowSeconds: W, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: await cid('initial'), sha256: sha('initial') } }, T))
    const recorder = ids.find(i => i.did === state.recorder(1)) as Identity
    const [me] = ids.filter(i => i !== recorder) as [Identity]
    // I and the recorder propose; the third member proposes nothing.
    const proposals: Block[] = []
    for (const who of [me, recorder]) {
      proposals.push(await block(who, { type: 'proposal', federation: 'fed', round: 1, base: await cid('initial'), delta: { cid: await cid(who.did), sha256: sha(who.did) }, numSamples: 10 }, T + 5))
      await apply(proposals.at(-1) as Block)
    }
    for (const p of proposals) {
      for (const voter of ids.filter(i => i.did !== state.proposals.get(p.id)?.signed.issuer)) await apply(await block(voter, { type: 'vote', federation: 'fed', round: 1, proposal: p.id, accept: true, score: 0.1, rationale: 'measured' }, T + 10))
    }
    for (const p of proposals) await apply(await block(recorder, { type: 'decision', federation: 'fed', round: 1, proposal: p.id, proposer: state.proposals.get(p.id)?.signed.issuer as string, ...state.derive(p.id) }, T + W + 1))
    await apply(await block(recorder, { type: 'checkpoint', federation: 'fed', round: 1, parent: await cid('initial'), model: { cid: await cid('m1'), sha256: sha('m1') }, merged: state.accepted(1).map(e => e.block) }, T + W + 2))
    expect(state.global?.round).toBe(1)

    // My close(1) began a window and a half before T + W + 10, so its waits for proposals and votes run out then.
    let now = T + 10 - W / 2
    const clock: Clock = {
      now: () => now,
      settle: async () => {},
      until: async (done, seconds) => { if (done()) return true; now += Math.ceil(seconds); return false }
    }
    const seat = { participant: { state, closeRound: async () => {} }, driver: { busy: false, idle: async () => {}, openRound: async () => {} } } as unknown as Seat
    const started = now
    await new RoundLoop({ seats: () => [seat], members: 3, windowSeconds: W, clock }).close(1)
    expect(now - started).toBeLessThanOrEqual(W + W / 2)
  })
})
