import { join } from 'node:path'
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
import type { ContentStore } from '../../src/storage/index.ts'
import { createLocalBus } from '../../src/transport/local.ts'
import { tempDir } from './helpers.ts'

export interface Withholding {
  participant: Participant
  /** A peer's proposal of a small update (`nudge` in every weight), anchored and announced: the withholder's Δw put in its own store, the peer's in mine. */
  propose: (who: 'withholder' | 'peer', nudge: number) => Promise<BlockId>
  /** My votes so far, by proposal, in the order cast. */
  votedOn: Map<BlockId, boolean>
  voted: (proposal: BlockId) => Promise<void>
}

/**
 * Me (a member with its own queue, as in its own process), a withholder and a peer, chartered
 * by me on a tangle and a local bus. `stores.mine` is my content store; `stores.withholder`
 * is where the withholder puts its Δw, which my store may never be able to give me.
 */
export async function withWithholder (config: RunConfig, stores: { mine: ContentStore, withholder: ContentStore }, body: (f: Withholding) => Promise<void>, driver?: DriverFactory): Promise<void> {
  const room = config.federation
  const dir = await tempDir()
  const task = await loadTask(config.task)
  const store = stores.mine
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
      const delta = await putModel(who === 'withholder' ? stores.withholder : store, mapValues(global.weights, () => nudge))
      const proposal: Proposal = { type: 'proposal', federation: room, round: 1, base: global.ref.cid, delta, numSamples: 100 }
      const jwt = await ids[who].sign(proposal)
      const block = await ledger.append(jwt)
      await bus.publish(room, { kind: 'record', block: block.id, jwt })
      return block.id
    }
    await body({ participant, propose, votedOn, voted })
  } finally {
    participant.stop()
    await ledger.close()
    await bus.close()
    task.dispose()
  }
}
