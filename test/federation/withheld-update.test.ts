import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BackendUnavailableError } from '../../src/core/errors.ts'
import type { BlockId, Proposal } from '../../src/core/records.ts'
import { putModel } from '../../src/federation/content.ts'
import type { RunConfig } from '../../src/federation/config.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { charterOf, enrol } from '../../src/federation/enrol.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { createIdentity, type Identity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { createLedger } from '../../src/ledger/index.ts'
import { loadTask } from '../../src/ml/task.ts'
import { mapValues } from '../../src/ml/weights.ts'
import { createContentStore } from '../../src/storage/index.ts'
import { createLocalBus } from '../../src/transport/local.ts'
import { smallConfig, tempDir } from './helpers.ts'

interface Federation {
  participant: Participant
  /** A peer's proposal of a small update (`nudge` in every weight), anchored and announced; its Δw withheld from my store if it is the withholder's. */
  propose: (who: 'withholder' | 'peer', nudge: number) => Promise<BlockId>
  /** My votes so far, by proposal, in the order cast. */
  votedOn: Map<BlockId, boolean>
  voted: (proposal: BlockId) => Promise<void>
  /** How often my store was asked for the withheld Δw. */
  asked: () => number
  /** Lets my store answer for the withheld Δw from now on (the asks waiting now fail). */
  release: () => void
}

/**
 * Me, the withholder and a peer, chartered by me; my store asked for the withholder's Δw
 * behaves as a kubo node asked for a block no peer provides: no answer until its timeout,
 * here until the test says so (`answers: 'never'`: at once, as every try after the timeout).
 */
async function withWithholder (config: RunConfig, answers: 'on release' | 'never', body: (f: Federation) => Promise<void>, driver?: DriverFactory): Promise<void> {
  const room = config.federation
  const dir = await tempDir()
  const task = await loadTask(config.task)
  const store = await createContentStore(config.store, { dir: join(dir, 'store') })
  const withheld = new Set<string>()
  const waiting = new Set<() => void>()
  const get = store.get.bind(store)
  let asked = 0
  store.get = async (cid, options) => {
    if (!withheld.has(cid)) return get(cid, options)
    asked++
    if (answers === 'on release') await new Promise<void>(resolve => { waiting.add(resolve) })
    throw new BackendUnavailableError(`kubo at http://127.0.0.1:5001 gave no answer to cat ${cid} within 30000 ms`)
  }
  const release = (): void => {
    withheld.clear()
    for (const r of waiting) r()
    waiting.clear()
  }
  const bus = createLocalBus()
  const ledger = await createLedger({ kind: 'tangle', difficulty: 4 }, { dir: join(dir, 'ledger') })
  const ids: Record<'me' | 'withholder' | 'peer', Identity> = { me: createIdentity(randomSecretKey()), withholder: createIdentity(randomSecretKey()), peer: createIdentity(randomSecretKey()) }
  const shard = task.shards(3, { seed: config.seed, partition: config.partition.kind, alpha: config.partition.alpha })[0]
  if (shard === undefined) throw new Error('no shard')
  const participant = await enrol(config, 0, { identity: ids.me, store, ledger, bus, task, shard, dir, driver })
  const votedOn = new Map<BlockId, boolean>()
  participant.on('conclave:vote:cast', e => { votedOn.set(e.proposal, e.accept) })
  const voted = async (proposal: BlockId): Promise<void> => { await new Promise<void>(resolve => { if (votedOn.has(proposal)) resolve(); else participant.on('conclave:vote:cast', e => { if (e.proposal === proposal) resolve() }) }) }
  try {
    await participant.start()
    await participant.publishRecord(await charterOf(config, task, store, [ids.me.did, ids.withholder.did, ids.peer.did]))
    await participant.idle()
    const global = participant.globalModel
    if (global === undefined) throw new Error('no global model')
    const propose = async (who: 'withholder' | 'peer', nudge: number): Promise<BlockId> => {
      const delta = await putModel(store, mapValues(global.weights, () => nudge))
      if (who === 'withholder') withheld.add(delta.cid)
      const proposal: Proposal = { type: 'proposal', federation: room, round: 1, base: global.ref.cid, delta, numSamples: 100 }
      const jwt = await ids[who].sign(proposal)
      const block = await ledger.append(jwt)
      await bus.publish(room, { kind: 'record', block: block.id, jwt })
      return block.id
    }
    await body({ participant, propose, votedOn, voted, asked: () => asked, release })
  } finally {
    release()
    participant.stop()
    await ledger.close()
    await bus.close()
    await store.close()
    task.dispose()
  }
}

/**
 * A member may anchor a proposal whose Δw it lets no one fetch. On IPFS a peer's kubo then
 * looks for it until its timeout (30 s) and says it gave no answer, and a voter tries again
 * after 1, 2, 4, 8 and 16 s (its own store may be the one in trouble). Done in the turn of
 * that record, the wait held up every record announced after it and the member's own
 * training and proposing: each withheld proposal stalled every honest peer for minutes (the
 * first case timed out at `propose` before steps/fetch-ahead.ts).
 */
describe('a participant waiting for a peer\'s update', () => {
  it('handles the records announced after a proposal whose Δw its store cannot fetch, trains and proposes meanwhile, and judges them in order once it can', { timeout: 60_000 }, async () => {
    await withWithholder(smallConfig({ agents: 3, rounds: 1 }), 'on release', async ({ participant, propose, votedOn, voted, asked, release }) => {
      const hidden = await propose('withholder', 1e-4)
      const open = await propose('peer', 2e-4)
      const mine = await participant.propose(1)
      await participant.idle()
      expect(asked()).toBe(1)
      expect(participant.state.rounds.get(1)?.proposals).toEqual([hidden, open, mine])
      expect(votedOn.size).toBe(0)

      // The store answers in the end (the withholder gives in): the member tries again and judges both, in their order.
      release()
      await voted(open)
      expect([...votedOn.keys()]).toEqual([hidden, open])
    })
  })

  it('lets an agent that asked for the withheld one evaluate the others meanwhile, and that one once its store answers', { timeout: 60_000 }, async () => {
    // An agent's driver: it evaluates when its model says, here when the test does.
    const byHand: DriverFactory = async () => ({ openRound: async () => {}, busy: false, idle: async () => {}, close: async () => {} })
    await withWithholder(smallConfig({ agents: 3, rounds: 1 }), 'on release', async ({ participant, propose, asked, release }) => {
      const hidden = await propose('withholder', 1e-4)
      const open = await propose('peer', 2e-4)
      await participant.idle()
      // Its model asks for the withheld one first: the wait is the agent's, not the member's.
      const waiting = participant.evaluate(hidden)
      expect((await participant.evaluate(open)).unusable).toBeUndefined()
      expect(asked()).toBe(1)
      release()
      expect((await waiting).unusable).toBeUndefined()
    }, byHand)
  })

  it('gives up on a Δw its store never gives it, and judges the rest of the round against their combination without it', { timeout: 90_000 }, async () => {
    await withWithholder(smallConfig({ agents: 3, rounds: 1, acceptance: 'marginal' }), 'never', async ({ participant, propose, votedOn, voted, asked }) => {
      const hidden = await propose('withholder', 1e-4)
      const open = await propose('peer', 2e-4)
      await participant.propose(1)
      await voted(open)
      await participant.idle()
      // The first try and one after each wait; then it is left unjudged, neither accepted nor blamed for my store.
      expect(asked()).toBe(6)
      expect([...votedOn.keys()]).toEqual([open])
      expect(await participant.fetchedAhead()).toEqual(new Set([hidden]))
    })
  })
})
