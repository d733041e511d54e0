/**
 * A long, valid ledger for measuring the audit, made without training: a sealed run
 * directory (`ledger/`, `store/`, `manifest.json`, `head.json`) that `conclave audit DIR`
 * passes. Every record goes the real way: signed by a member's identity, anchored on the
 * embedded tangle (which verifies it) and applied to a FederationState as participants do;
 * decisions are the state's own tallies and each checkpoint is the merge the audit
 * re-computes. Only the updates are made up: small seeded random deltas.
 */
import { createHash } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Charter, Record as LedgerRecord } from '../src/core/records.ts'
import { Rng, mixSeed } from '../src/data/rng.ts'
import { putModel } from '../src/federation/content.ts'
import { sealRunDir } from '../src/federation/head.ts'
import { mergeRound, trustOf, type GlobalModel } from '../src/federation/merge.ts'
import { FederationState } from '../src/federation/state.ts'
import { createIdentity, type Identity } from '../src/identity/index.ts'
import { openTangle } from '../src/ledger/tangle.ts'
import type { Weights } from '../src/ml/weights.ts'
import { createHeliaStore } from '../src/storage/helia.ts'

export interface LongLedgerOptions {
  /** Blocks to anchor, the charter included; the last round may end part-way. */
  records: number
  /** @default 5 */
  members?: number
  /** Seeds the members' keys, the updates and the votes. @default 1 */
  seed?: number
  /** Values per update (one tensor). @default 64 */
  parameters?: number
}

const FEDERATION = 'long-ledger'
/** Seconds between blocks: a round of 5 members (31 blocks) stays inside its voting window. */
const TICK = 1

/** Writes a sealed run directory of `records` blocks under `dir`; returns the final model's hash. */
export async function writeLongLedger (dir: string, options: LongLedgerOptions): Promise<{ records: number, rounds: number, modelHash: string }> {
  const { records, members: count = 5, seed = 1, parameters = 64 } = options
  const rng = new Rng(seed)
  const members = Array.from({ length: count }, (_, i) => createIdentity(seededKey(seed, i))).sort((a, b) => a.did < b.did ? -1 : 1)
  const byDid = new Map(members.map(m => [m.did as string, m]))
  let now = 1_800_000_000
  await mkdir(join(dir, 'ledger'), { recursive: true })
  const ledger = await openTangle({ dir: join(dir, 'ledger'), difficulty: 0, clock: () => now })
  const store = await createHeliaStore({ dir: join(dir, 'store') })
  const state = new FederationState()
  const deltas = new Map<string, Weights>()
  let anchored = 0

  /** Signs, anchors and applies one record; false once the ledger holds `records` blocks. */
  const anchor = async (signer: Identity, record: LedgerRecord): Promise<string | undefined> => {
    if (anchored === records) return undefined
    now += TICK
    const block = await ledger.append(await signer.sign(record, { now }))
    await state.apply(block, { ledger })
    anchored++
    return block.id
  }

  const weights = (scale: number): Weights =>
    new Map([['w', { shape: [parameters], data: Float32Array.from({ length: parameters }, () => scale * rng.normal()) }]])
  let global: GlobalModel & { cid: string, sha256: string } = { weights: weights(1), cid: '', sha256: '' }
  Object.assign(global, await putModel(store, global.weights))
  const charter: Charter = {
    type: 'charter', federation: FEDERATION, round: 0, members: members.map(m => m.did), quorum: { kind: 'majority' },
    windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: global.cid, sha256: global.sha256 }
  }
  await anchor(members[0] as Identity, charter)

  let round = 0
  while (anchored < records) {
    round++
    const proposals: string[] = []
    for (const proposer of members) {
      const delta = weights(0.01)
      const ref = await putModel(store, delta)
      const id = await anchor(proposer, { type: 'proposal', federation: FEDERATION, round, base: global.cid, delta: ref, numSamples: 100 + rng.int(100) })
      if (id === undefined) break
      deltas.set(id, delta)
      proposals.push(id)
    }
    for (const proposal of proposals) {
      const proposer = state.proposals.get(proposal)?.signed.issuer
      for (const voter of members.filter(m => m.did !== proposer)) {
        const accept = rng.next() < 0.8
        await anchor(voter, { type: 'vote', federation: FEDERATION, round, proposal, accept, score: accept ? 0.01 : -0.01, rationale: `seeded vote (${accept ? 'accept' : 'reject'})` })
      }
    }
    const recorder = byDid.get(state.recorder(round)) as Identity
    for (const proposal of proposals) {
      const entry = state.proposals.get(proposal)
      if (entry === undefined) continue
      await anchor(recorder, { type: 'decision', federation: FEDERATION, round, proposal, proposer: entry.signed.issuer, ...state.derive(proposal) })
    }
    if (anchored === records) break
    const accepted = state.accepted(round)
    const next = mergeRound(global, accepted.map(p => ({ delta: deltas.get(p.block) as Weights, numSamples: p.signed.record.numSamples, trust: trustOf(p) })), state, round)
    const model = await putModel(store, next.weights)
    await anchor(recorder, { type: 'checkpoint', federation: FEDERATION, round, parent: global.cid, model, merged: accepted.map(p => p.block) })
    global = { ...next, ...model }
    for (const id of proposals) deltas.delete(id)
  }
  await ledger.close()
  await store.close()
  await sealRunDir(dir, { federation: FEDERATION, model: global.sha256, signers: members })
  return { records: anchored, rounds: round, modelHash: global.sha256 }
}

/** A member's 32-byte key from the seed (not a secret: these ledgers are for measuring). */
function seededKey (seed: number, member: number): Uint8Array {
  return Uint8Array.from(createHash('sha256').update(`long-ledger ${mixSeed(seed, member)}`).digest())
}
