import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BackendUnavailableError } from '../../src/core/errors.ts'
import type { RunConfig } from '../../src/federation/config.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { createContentStore, type ContentStore } from '../../src/storage/index.ts'
import { smallConfig, tempDir } from './helpers.ts'
import { withWithholder, type Withholding } from './withholder.ts'

/**
 * My store (embedded), asked for a Δw the withholder put in it, behaves as a kubo node asked for
 * a block no peer provides: no answer until its timeout, here until the test says so
 * (`answers: 'never'`: at once, as every try after the timeout does).
 * test/integration/withheld-kubo.int.test.ts has two real kubo nodes do it.
 */
async function withheldIn (answers: 'on release' | 'never'): Promise<{ store: ContentStore, withholder: ContentStore, asked: () => number, release: () => void }> {
  const store = await createContentStore({ kind: 'helia' }, { dir: join(await tempDir(), 'store') })
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
  // The withholder's store is mine, but what it puts there my store will not give me.
  const withholder: ContentStore = {
    put: async (bytes, options) => { const cid = await store.put(bytes, options); withheld.add(cid); return cid },
    get: async (cid, options) => store.get(cid, options),
    has: async (cid, options) => store.has(cid, options),
    pin: async (cid, options) => { await store.pin(cid, options) },
    isPinned: async (cid, options) => store.isPinned(cid, options),
    close: async () => {}
  }
  const release = (): void => {
    withheld.clear()
    for (const r of waiting) r()
    waiting.clear()
  }
  return { store, withholder, asked: () => asked, release }
}

async function withheldRun (config: RunConfig, answers: 'on release' | 'never', body: (f: Withholding & { asked: () => number, release: () => void }) => Promise<void>, driver?: DriverFactory): Promise<void> {
  const { store, withholder, asked, release } = await withheldIn(answers)
  try {
    await withWithholder(config, { mine: store, withholder }, async f => { await body({ ...f, asked, release }) }, driver)
  } finally {
    release()
    await store.close()
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
    await withheldRun(smallConfig({ agents: 3, rounds: 1 }), 'on release', async ({ participant, propose, votedOn, voted, asked, release }) => {
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
    await withheldRun(smallConfig({ agents: 3, rounds: 1 }), 'on release', async ({ participant, propose, asked, release }) => {
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
    await withheldRun(smallConfig({ agents: 3, rounds: 1, acceptance: 'marginal' }), 'never', async ({ participant, propose, votedOn, voted, asked }) => {
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
