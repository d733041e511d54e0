import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { BlockId, Checkpoint } from '../../src/core/records.ts'
import { charterOf, enrol } from '../../src/federation/enrol.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { mine } from '../../src/ledger/dag.ts'
import { openReplica } from '../../src/ledger/replica.ts'
import { loadTask } from '../../src/ml/task.ts'
import { createContentStore } from '../../src/storage/index.ts'
import { createLocalBus } from '../../src/transport/local.ts'
import { byHand, smallConfig, tempDir } from './helpers.ts'

/**
 * A copy kept a block dated up to a minute ahead of its clock (clock skew), and the ledger's
 * time is what closes a round (state.closableAt). So the round's recorder, hostile, dating
 * its checkpoint a window after the round opened, closed the round up to a minute early: the
 * proposals of that last minute were refused (found red-teaming). A copy now keeps a block
 * dated over 10 s ahead only once it no longer is: what was anchored meanwhile comes first.
 */
describe('a recorder that dates its record ahead of the clock', () => {
  it('closes no round early: my copy keeps its checkpoint once the date comes, after my proposal, and I refuse it', { timeout: 120_000 }, async () => {
    const T = Math.floor(Date.now() / 1000)
    let now = T
    const clock = (): number => now
    const config = smallConfig({ agents: 2, rounds: 1, windowSeconds: 120 })
    const room = config.federation
    const dir = await tempDir()
    const task = await loadTask(config.task)
    const store = await createContentStore(config.store, { dir: join(dir, 'store') })
    const bus = createLocalBus()
    // Round 1's recorder is the first member in DID order.
    const [recorder, me] = [createIdentity(randomSecretKey()), createIdentity(randomSecretKey())].sort((a, b) => a.did < b.did ? -1 : 1) as [ReturnType<typeof createIdentity>, ReturnType<typeof createIdentity>]
    const ledger = await openReplica({ dir: join(dir, 'ledger'), bus, room, difficulty: 4, waitMs: 3_600_000, clock })
    const shard = task.shards(2, { seed: config.seed, partition: config.partition.kind, alpha: config.partition.alpha })[0]
    if (shard === undefined) throw new Error('no shard')
    const participant = await enrol(config, 0, { identity: me, store, ledger, bus, task, shard, dir, driver: byHand, clock })
    const rejected = new Map<BlockId, string>()
    participant.on('conclave:record:rejected', e => { rejected.set(e.block, e.error.name) })
    try {
      await participant.start()
      const charter = await participant.publishRecord(await charterOf(config, task, store, [me.did, recorder.did]))
      await participant.idle()
      expect(participant.state.recorder(1)).toBe(recorder.did)
      const initial = participant.state.global?.model
      if (initial === undefined) throw new Error('no charter model')

      // 70 s into the window, the recorder anchors an empty checkpoint dated at its end.
      now = T + 70
      const empty: Checkpoint = { type: 'checkpoint', federation: room, round: 1, parent: initial.cid, model: initial, merged: [] }
      const jwt = await recorder.sign(empty, { now: T + 120 })
      const { id, pow } = await mine([[charter], jwt, T + 120], 4)
      await bus.publish(room, { kind: 'block', block: { id, parents: [charter], record: jwt, time: T + 120, pow } })
      await bus.publish(room, { kind: 'record', block: id, jwt })
      await participant.idle()
      expect(participant.state.global?.round).toBe(0)

      // 10 s later, still inside the window, I propose: my update is in round 1.
      now = T + 80
      const mine_ = await participant.propose(1)
      await participant.idle()
      expect(participant.state.rounds.get(1)?.proposals).toEqual([mine_])

      // Once the checkpoint's date is 10 s ahead (the skew allowed), my copy keeps it, after my proposal, and I refuse it.
      now = T + 110
      const refused = new Promise<void>(resolve => { participant.on('conclave:record:rejected', e => { if (e.block === id) resolve() }) })
      await refused
      await participant.idle()
      expect(rejected.get(id)).toBe('UndecidedRoundError')
      expect(participant.state.global?.round).toBe(0)
      const order: BlockId[] = []
      for await (const block of ledger.blocks()) order.push(block.id)
      expect(order).toEqual([charter, mine_, id])
    } finally {
      participant.stop()
      await ledger.close()
      await bus.close()
      await store.close()
      task.dispose()
    }
  })
})
