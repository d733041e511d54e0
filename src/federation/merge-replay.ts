import { ConclaveError, ContentNotFoundError, DerivationMismatchError, InvalidWeightsError, PayloadTooLargeError } from '../core/errors.ts'
import type { BlockId, ModelRef, Record as ConclaveRecord, SignedRecord } from '../core/records.ts'
import type { Weights } from '../ml/weights.ts'
import type { ContentStore } from '../storage/index.ts'
import { decodeUpdateBytes, fetchModel, MAX_MODEL_BYTES, modelRef, type UpdateFormat } from './content.ts'
import { mergeRound, trustOf, type GlobalModel } from './merge.ts'
import type { FederationState } from './state.ts'

/**
 * Re-derives a ledger's merges from content while its records are applied in order, as every
 * member does (steps/merge.ts): a checkpoint must name the merge of its round's accepted
 * updates (`beforeCommit`, given to the state's apply), so a recorder's made-up model is
 * refused and the one derived stands. Reads only: merged models are hashed, never stored.
 */
export class MergeReplay {
  readonly #store: ContentStore
  readonly #state: FederationState
  /** Each proposal's update as read, or why it is unusable (legitimate history as long as nobody merges it). */
  readonly #usable = new Map<BlockId, Weights | ConclaveError>()
  #global?: GlobalModel & { ref: ModelRef }
  /** The step of the checkpoint being applied, as derived in its beforeCommit: the next round's momentum. */
  #step?: Weights

  constructor (store: ContentStore, state: FederationState) {
    this.#store = store
    this.#state = state
  }

  /** How many proposals' updates (or why they are unusable) the replay holds now. */
  get held (): number { return this.#usable.size }

  /** The global model so far: the charter's, then each checkpoint's. */
  get model (): ModelRef | undefined { return this.#global?.ref }

  /** For the state's apply: a checkpoint whose model is not the merge of its round's accepted updates is refused (DerivationMismatchError). */
  readonly beforeCommit = async ({ record }: SignedRecord): Promise<void> => {
    const global = this.#global
    if (record.type !== 'checkpoint' || global === undefined) return
    const accepted = this.#state.accepted(record.round).map(p => ({ delta: this.#delta(p.block), numSamples: p.signed.record.numSamples, trust: trustOf(p) }))
    const next = mergeRound(global, accepted, this.#state, record.round)
    // One encoding of the merge gives both its sha-256 and its CID.
    const merged = await modelRef(next.weights)
    if (merged.sha256 !== record.model.sha256) {
      throw new DerivationMismatchError(`the accepted updates of round ${record.round} merge to ${merged.sha256}, the checkpoint says ${record.model.sha256}`)
    }
    // Members refuse a checkpoint that names another model's CID (steps/merge.ts), so the replay does too.
    if (merged.cid !== record.model.cid) {
      throw new DerivationMismatchError(`checkpoint of round ${record.round} names model ${record.model.cid}, the merge of its accepted updates is ${merged.cid}`)
    }
    this.#step = next.step
  }

  /**
   * Reads what a record the state just took brings: the charter's model, a proposal's
   * update, a checkpoint's model. Throws (ConclaveError) where content is broken: a model
   * missing or not matching its CID, an accepted update that cannot be merged.
   */
  async applied (record: ConclaveRecord, block: BlockId): Promise<void> {
    switch (record.type) {
      case 'charter':
        this.#global = { ref: record.initial, weights: await fetchModel(this.#store, record.initial) }
        return
      case 'proposal':
        // The charter and its initial model come first, or the state refused the proposal.
        this.#usable.set(block, await readUpdate(this.#store, record.delta, { compression: this.#state.charter?.record.compression, layout: (this.#global as GlobalModel).weights }))
        return
      case 'decision':
        if (record.accepted) this.#delta(record.proposal)
        return
      case 'checkpoint':
        this.#global = { ref: record.model, weights: await fetchModel(this.#store, record.model), step: this.#step }
        // The round is merged, and the state refuses any later record of it: its updates are
        // let go, so a replay's memory is one round's, not the run's (found red-teaming).
        for (const proposal of this.#state.rounds.get(record.round)?.proposals ?? []) this.#usable.delete(proposal)
    }
  }

  #delta (proposal: BlockId): Weights {
    const delta = this.#usable.get(proposal)
    if (delta === undefined) throw new ContentNotFoundError(`no update content was read for proposal ${proposal}`)
    if (delta instanceof ConclaveError) throw new InvalidWeightsError(`proposal ${proposal} was accepted but its update is unusable (${delta.code})`, { cause: delta })
    return delta
  }
}

/**
 * A proposer may publish unusable content (missing, mislabelled, NaN, not the charter's
 * compression of the model): that is legitimate
 * history as long as nobody merged it. A store block that no longer matches its CID is
 * not: the store's ContentMismatchError ends the audit.
 */
async function readUpdate (store: ContentStore, ref: ModelRef, format: UpdateFormat): Promise<Weights | ConclaveError> {
  let bytes: Uint8Array
  try {
    bytes = await store.get(ref.cid, { maxBytes: MAX_MODEL_BYTES })
  } catch (err) {
    if (err instanceof ContentNotFoundError || err instanceof PayloadTooLargeError) return err
    throw err
  }
  try {
    return decodeUpdateBytes(bytes, ref, format)
  } catch (err) {
    if (err instanceof ConclaveError) return err
    throw err
  }
}
