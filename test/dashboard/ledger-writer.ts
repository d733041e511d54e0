import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import type { Record as ConclaveRecord } from '../../src/core/records.ts'
import { FederationState } from '../../src/federation/state.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { createIdentity, loadOrCreateKeystore, type Identity } from '../../src/identity/index.ts'
import type { Block, Ledger } from '../../src/ledger/index.ts'
import { openTangle } from '../../src/ledger/tangle.ts'

/** A fresh CIDv1 (raw, sha-256) that names no content: the view never fetches content. */
const randomCid = (): string => CID.createV1(0x55, createDigest(0x12, randomBytes(32))).toString()
const randomRef = (): { cid: string, sha256: string } => ({ cid: randomCid(), sha256: createHash('sha256').update(randomBytes(16)).digest('hex') })

/**
 * Writes a federation's records onto a tangle by hand, as its members would: each record
 * signed by the member whose turn it is, decisions and checkpoints derived from the votes
 * through the protocol's own reducer, so every record verifies and applies.
 */
export class LedgerWriter {
  readonly members: Identity[]
  readonly #ledger: Ledger
  readonly #state = new FederationState()
  #federation = ''
  /** The latest block's time. */
  #time = 0

  private constructor (ledger: Ledger, members: Identity[]) {
    this.#ledger = ledger
    this.members = members
  }

  /** A new federation of `size` members in `dir`, its charter anchored (quorum 2). */
  static async create (dir: string, size = 3): Promise<LedgerWriter> {
    const writer = new LedgerWriter(await openTangle({ dir, difficulty: 0 }), Array.from({ length: size }, () => createIdentity(randomSecretKey())))
    await writer.append(0, {
      type: 'charter', federation: 'dash', round: 0, members: writer.members.map(m => m.did), quorum: { kind: 'count', count: 2 },
      windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: randomRef()
    })
    return writer
  }

  /** The ledger of a finished run in `runDir`, its members' keys from `keys/`, to extend it. */
  static async extend (runDir: string): Promise<LedgerWriter> {
    const names = (await readdir(join(runDir, 'keys'))).filter(f => f.endsWith('.key.json')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    const members = await Promise.all(names.map(async name => loadOrCreateKeystore(join(runDir, 'keys', name))))
    const writer = new LedgerWriter(await openTangle({ dir: join(runDir, 'ledger') }), members)
    for await (const block of writer.#ledger.blocks()) await writer.#apply(block)
    return writer
  }

  get round (): number { return this.#state.currentRound() }

  get federation (): string { return this.#federation }

  /** Member `who` signs and anchors `record`. */
  async append (who: number, record: ConclaveRecord): Promise<Block> {
    // Signed at the ledger's time where it is ahead of the clock (a run whose members waited windows out on a simulated clock).
    const now = Math.max(Math.floor(Date.now() / 1000), this.#time)
    const block = await this.#ledger.append(await (this.members[who] as Identity).sign(record, { now }), record.type === 'vote' || record.type === 'human-vote' ? { after: record.proposal } : {})
    await this.#apply(block)
    return block
  }

  async propose (who: number): Promise<Block> {
    return this.append(who, { type: 'proposal', federation: this.#federation, round: this.round, base: this.#state.global?.model.cid as string, delta: randomRef(), numSamples: 100, metric: { name: 'loss', value: 0.5 } })
  }

  async vote (who: number, proposal: Block, accept: boolean, rationale = accept ? 'better on my data' : 'worse on my data'): Promise<Block> {
    // Signed with a measurement that makes the vote what the charter's terms decide: a clear gain, or a collapse.
    const measurement = { before: 0.5, after: accept ? 0.6 : -99.5, initial: 0, reference: 0.6, geometry: { normRatio: 1, cosine: 0.5, earlierCosine: 0, historyCosine: 0.5 } }
    return this.append(who, { type: 'vote', federation: this.#federation, round: this.round, proposal: proposal.id, accept, score: accept ? 0.1 : -0.1, rationale, measurement })
  }

  /** The round's recorder anchors the decision the votes make. */
  async decide (proposal: Block): Promise<Block> {
    const entry = this.#state.proposals.get(proposal.id)
    return this.append(this.#recorder(), { type: 'decision', federation: this.#federation, round: this.round, proposal: proposal.id, proposer: entry?.signed.issuer as string, ...this.#state.derive(proposal.id) })
  }

  /** The round's recorder closes it. */
  async checkpoint (): Promise<Block> {
    const round = this.round
    return this.append(this.#recorder(), { type: 'checkpoint', federation: this.#federation, round, parent: this.#state.global?.model.cid as string, model: randomRef(), merged: this.#state.accepted(round).map(p => p.block) })
  }

  async close (): Promise<void> { await this.#ledger.close() }

  #recorder (): number {
    return this.members.findIndex(m => m.did === this.#state.recorder(this.round))
  }

  async #apply (block: Block): Promise<void> {
    const signed = await this.#state.apply(block, { ledger: this.#ledger })
    this.#federation = signed.record.federation
    this.#time = Math.max(this.#time, block.time)
  }
}

/** One round of a 3-member federation: agent-1's and agent-2's updates accepted, agent-3's rejected. */
export async function oneRound (writer: LedgerWriter): Promise<void> {
  const proposals = [await writer.propose(0), await writer.propose(1), await writer.propose(2)]
  for (const [i, p] of proposals.entries()) {
    for (const voter of [0, 1, 2].filter(v => v !== i)) await writer.vote(voter, p, i !== 2)
  }
  for (const p of proposals) await writer.decide(p)
  await writer.checkpoint()
}
