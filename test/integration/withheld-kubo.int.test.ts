import { describe, expect, it } from 'vitest'
import { BackendUnavailableError } from '../../src/core/errors.ts'
import { createKuboStore } from '../../src/storage/kubo.ts'
import { smallConfig } from '../federation/helpers.ts'
import { withWithholder } from '../federation/withholder.ts'
import { connect, kuboNode, stop } from './kubo-nodes.ts'

/**
 * test/federation/withheld-update.test.ts with real kubo nodes: the withholder's Δw is on its
 * own node only, which mine is not connected to. My node looks for it until my store's
 * timeout and says it gave no answer, as the embedded test's store does; connected to the
 * withholder's node at last, it fetches it at the next try. (Before, the store read offline
 * only: "not found" at once, and a Δw on another member's node was never fetched at all.)
 */
describe('a member whose kubo node cannot find a proposal\'s Δw', () => {
  it('handles the records announced after it, trains and proposes meanwhile, and judges both once its node finds it', { timeout: 180_000 }, async () => {
    const [withholders, mine] = [await kuboNode(), await kuboNode()]
    try {
      const store = createKuboStore({ url: mine.url, timeoutMs: 2_000 })
      const withholder = createKuboStore({ url: withholders.url })
      await withWithholder(smallConfig({ agents: 3, rounds: 1 }), { mine: store, withholder }, async ({ participant, propose, votedOn, voted }) => {
        const hidden = await propose('withholder', 1e-4)
        await participant.idle()
        const cid = participant.state.proposals.get(hidden)?.signed.record.delta.cid as string
        // What kubo does with a block no peer provides: no answer until the caller's timeout.
        await expect(store.get(cid)).rejects.toThrow(BackendUnavailableError)
        const open = await propose('peer', 2e-4)
        const own = await participant.propose(1)
        await participant.idle()
        expect(participant.state.rounds.get(1)?.proposals).toEqual([hidden, open, own])
        expect(votedOn.size).toBe(0)

        // The withholder gives in: its node and mine connect, and my next try finds the Δw.
        connect(mine, withholders)
        await voted(open)
        expect([...votedOn.keys()]).toEqual([hidden, open])
        // Fetched from the withholder's node: a member's store reads what only a peer's node held.
        expect(await store.get(cid)).toEqual(await withholder.get(cid))
      })
      await store.close()
      await withholder.close()
    } finally {
      await stop(withholders)
      await stop(mine)
    }
  })
})
