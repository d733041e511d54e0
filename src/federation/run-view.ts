import { z } from 'zod'
import { ConclaveError, DerivationMismatchError, EmptyLedgerError } from '../core/errors.ts'
import type { SignedRecord } from '../core/records.ts'
import { peekRecord } from '../identity/index.ts'
import { BlockIndex } from '../ledger/dag.ts'
import { openLedgerDir, type Block, type Ledger } from '../ledger/index.ts'
import type { ContentStore } from '../storage/index.ts'
import { memberName } from './config.ts'
import { MergeReplay } from './merge-replay.ts'
import { FederationState } from './state.ts'

const Member = z.object({ did: z.string(), name: z.string() })
const Decided = z.object({ accepted: z.boolean(), accepts: z.number().int(), rejects: z.number().int(), required: z.number().int() })

/** One ledger block as the DAG shows it: its place, its parents, what it anchors and who signed it. */
export const ViewBlock = z.object({
  id: z.string(),
  seq: z.number().int(),
  parents: z.array(z.string()),
  type: z.string(),
  issuer: z.string(),
  round: z.number().int(),
  /** Unix seconds: the ledger's time, not the signer's. */
  time: z.number().int()
})
export type ViewBlock = z.infer<typeof ViewBlock>

/**
 * What a run's ledger shows, built only from records that verify and that the protocol
 * applies (src/federation/state.ts): the dashboard's `/api/state` and the report's charts.
 * Members are named agent-N by their place in the charter, as enrolment names them.
 */
export const RunView = z.object({
  federation: z.string().nullable(),
  members: z.array(Member),
  /** Accepting votes a proposal needs (null before the charter). */
  required: z.number().int().nullable(),
  rounds: z.array(z.object({
    round: z.number().int(),
    proposals: z.array(z.string()),
    accepted: z.number().int(),
    rejected: z.number().int(),
    /** When the round opened: the charter's or the previous checkpoint's block time. */
    openedAt: z.number().int(),
    /** Its checkpoint's block time; null while the round is open. */
    closedAt: z.number().int().nullable(),
    model: z.string().nullable()
  })),
  /**
   * Whether each checkpoint's model was derived again from the round's accepted updates, as
   * every member and the audit derive it (a recorder's made-up model is then refused, and the
   * standby's stands); `why` not, where it was not: the models are then as the recorders signed them.
   */
  checkpoints: z.object({ rederived: z.boolean(), why: z.string().nullable() }),
  proposals: z.array(z.object({
    block: z.string(),
    seq: z.number().int(),
    round: z.number().int(),
    proposer: Member,
    time: z.number().int(),
    numSamples: z.number().int(),
    /** The proposer's own measure of its update (its training loss). */
    metric: z.object({ name: z.string(), value: z.number() }).nullable(),
    /** Null until the recorder anchors it; `by` is that recorder. */
    decision: Decided.extend({ block: z.string(), by: Member }).nullable()
  })),
  votes: z.array(z.object({
    block: z.string(),
    seq: z.number().int(),
    round: z.number().int(),
    proposal: z.string(),
    voter: Member,
    accept: z.boolean(),
    /** The change the voter measured on its validation data. */
    score: z.number(),
    rationale: z.string(),
    /** Who made the call behind the vote (the agent's model or the policy), when the vote says. */
    decidedBy: z.string().optional()
  })),
  /** Researchers' 👍/👎 on proposals, beside the members' votes: `counted` when the charter counts them toward the quorum. */
  humanVotes: z.array(z.object({
    block: z.string(),
    seq: z.number().int(),
    round: z.number().int(),
    proposal: z.string(),
    researcher: z.string(),
    accept: z.boolean(),
    /** The reaction's Matrix event id, which anyone in the room can check. */
    event: z.string(),
    /** The member that anchored it. */
    recordedBy: Member,
    counted: z.boolean()
  })),
  /**
   * Reactions anchored as a researcher's vote that count for nothing, with the members that
   * anchored each: fewer than the charter's `humanWitnesses` (a forged one, say), or not her vote on that proposal.
   */
  humanVotesUncounted: z.array(z.object({ block: z.string(), proposal: z.string(), researcher: z.string(), accept: z.boolean(), event: z.string(), witnesses: z.array(Member) })),
  decisions: z.array(Decided.extend({ block: z.string(), seq: z.number().int(), round: z.number().int(), proposal: z.string(), recorder: Member })),
  /** Each member's standing after each round: proposals accepted and rejected, votes cast (cumulative). */
  reputation: z.array(z.object({ round: z.number().int(), member: Member, accepted: z.number().int(), rejected: z.number().int(), votes: z.number().int() })),
  blocks: z.array(ViewBlock),
  /** Anchored records the protocol refuses (a non-member's, a double vote…): counted, never shown as votes or proposals. */
  refused: z.array(z.object({ seq: z.number().int(), block: z.string(), type: z.string().nullable(), code: z.string() }))
})
export type RunView = z.infer<typeof RunView>

/** What one new block became: a record the view now shows, or one the protocol refused (round 0: a refused record's claims are not trusted). */
export type Applied = { seq: number, block: string, type: string, round: number, refused?: string }

/**
 * Builds a RunView block by block, in ledger order, through the protocol's own reducer: a
 * record appears only once its signature, its signer's membership and every protocol rule
 * have been checked, as the audit does. Given the run's content store, each checkpoint's
 * model is derived again from the accepted updates too; without one, or once content it
 * needs cannot be read, the models are shown as signed and the view says why.
 */
export class RunViewBuilder {
  readonly #state = new FederationState()
  readonly #view: Omit<RunView, 'reputation' | 'rounds' | 'federation' | 'members' | 'required' | 'checkpoints' | 'humanVotesUncounted'> = { proposals: [], votes: [], humanVotes: [], decisions: [], blocks: [], refused: [] }
  readonly #closed = new Map<number, { time: number, model: string }>()
  #charterTime = 0
  #merges?: MergeReplay
  #unchecked: string | null

  constructor (options: { store?: ContentStore } = {}) {
    this.#merges = options.store === undefined ? undefined : new MergeReplay(options.store, this.#state)
    this.#unchecked = options.store === undefined ? 'no content store to derive them from' : null
  }

  /** Applies the next block; a block the protocol refuses is listed as refused and changes nothing else. */
  async apply (block: Block, ledger: Pick<Ledger, 'descends'>): Promise<Applied> {
    let signed: SignedRecord
    try {
      signed = await this.#state.apply(block, { ledger, beforeCommit: this.#checkMerge })
      await this.#merges?.applied(signed.record, block.id).catch(this.#stopChecking)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      const type = peekRecord(block.record).record?.type ?? null
      this.#view.refused.push({ seq: block.seq, block: block.id, type, code: err.code })
      return { seq: block.seq, block: block.id, type: type ?? 'unknown', round: 0, refused: err.code }
    }
    const record = signed.record
    const at = { block: block.id, seq: block.seq, round: record.round }
    this.#view.blocks.push({ id: block.id, seq: block.seq, parents: block.parents, type: record.type, issuer: signed.issuer, round: record.round, time: block.time })
    switch (record.type) {
      case 'charter':
        this.#charterTime = block.time
        break
      case 'proposal':
        this.#view.proposals.push({ ...at, proposer: this.#member(signed.issuer), time: block.time, numSamples: record.numSamples, metric: record.metric ?? null, decision: null })
        break
      case 'vote': {
        const decidedBy = (record as { decidedBy?: unknown }).decidedBy
        this.#view.votes.push({
          ...at,
          proposal: record.proposal,
          voter: this.#member(signed.issuer),
          accept: record.accept,
          score: record.score,
          rationale: record.rationale,
          ...(decidedBy === undefined ? {} : { decidedBy: typeof decidedBy === 'string' ? decidedBy : JSON.stringify(decidedBy) })
        })
        break
      }
      case 'human-vote':
        if (!this.#state.countsAsHumanVote(block.id, record)) break // a copy
        this.#view.humanVotes.push({ ...at, proposal: record.proposal, researcher: record.researcher, accept: record.accept, event: record.event, recordedBy: this.#member(signed.issuer), counted: this.#state.charter?.record.humanVotes === 'counted' })
        break
      case 'decision': {
        const decided = { accepted: record.accepted, accepts: record.accepts, rejects: record.rejects, required: record.required }
        const by = this.#member(signed.issuer)
        this.#view.decisions.push({ ...at, ...decided, proposal: record.proposal, recorder: by })
        const proposal = this.#view.proposals.find(p => p.block === record.proposal)
        if (proposal !== undefined) proposal.decision = { ...decided, block: block.id, by }
        break
      }
      case 'checkpoint':
        this.#closed.set(record.round, { time: block.time, model: record.model.sha256 })
    }
    return { seq: block.seq, block: block.id, type: record.type, round: record.round }
  }

  /** A checkpoint naming another model than the merge is refused; content the merge cannot read stops the checking, not the view. */
  readonly #checkMerge = async (signed: SignedRecord): Promise<void> => {
    await this.#merges?.beforeCommit(signed).catch((err: unknown) => {
      if (err instanceof DerivationMismatchError) throw err
      this.#stopChecking(err)
    })
  }

  readonly #stopChecking = (err: unknown): void => {
    if (!(err instanceof ConclaveError)) throw err
    this.#merges = undefined
    this.#unchecked = `${err.name}: ${err.message}`
  }

  view (): RunView {
    const charter = this.#state.charter?.record
    const rounds = [...this.#state.rounds.keys()].sort((a, b) => a - b).map(round => {
      const proposals = this.#view.proposals.filter(p => p.round === round)
      const closed = this.#closed.get(round)
      return {
        round,
        proposals: proposals.map(p => p.block),
        accepted: proposals.filter(p => p.decision?.accepted === true).length,
        rejected: proposals.filter(p => p.decision?.accepted === false).length,
        openedAt: this.#closed.get(round - 1)?.time ?? this.#charterTime,
        closedAt: closed?.time ?? null,
        model: closed?.model ?? null
      }
    })
    return {
      federation: charter?.federation ?? null,
      members: (charter?.members ?? []).map(did => this.#member(did)),
      required: charter === undefined ? null : this.#state.required,
      rounds,
      checkpoints: { rederived: this.#unchecked === null, why: this.#unchecked },
      ...structuredClone(this.#view),
      humanVotesUncounted: this.#state.uncountedCitations().map(({ block, record, witnesses }) =>
        ({ block, proposal: record.proposal, researcher: record.researcher, accept: record.accept, event: record.event, witnesses: witnesses.map(did => this.#member(did)) })),
      reputation: this.#reputation(rounds.map(r => r.round))
    }
  }

  /** Cumulative standing after each round, from the decisions and votes applied (as the state's reputation counts them). */
  #reputation (rounds: number[]): RunView['reputation'] {
    const members = this.#state.charter?.record.members ?? []
    return [0, ...rounds].flatMap(round => members.map(did => ({
      round,
      member: this.#member(did),
      accepted: this.#view.decisions.filter(d => d.round <= round && d.accepted && this.#proposer(d.proposal) === did).length,
      rejected: this.#view.decisions.filter(d => d.round <= round && !d.accepted && this.#proposer(d.proposal) === did).length,
      votes: this.#view.votes.filter(v => v.round <= round && v.voter.did === did).length
    })))
  }

  #proposer (block: string): string | undefined {
    return this.#view.proposals.find(p => p.block === block)?.proposer.did
  }

  #member (did: string): z.infer<typeof Member> {
    const index = this.#state.charter?.record.members.indexOf(did) ?? -1
    return { did, name: index < 0 ? did : memberName(index) }
  }
}

/**
 * The blocks a run's `ledger/` folder holds now (none when it holds no ledger yet), read
 * through the ledger's own read-only opener: only the prefix whose blocks verify.
 */
export async function readLedgerDir (dir: string): Promise<{ blocks: Block[], ledger: Pick<Ledger, 'descends'> }> {
  let ledger: Ledger
  try {
    ledger = await openLedgerDir(dir)
  } catch (err) {
    if (err instanceof EmptyLedgerError) return { blocks: [], ledger: { descends: async () => false } }
    throw err
  }
  try {
    const blocks: Block[] = []
    for await (const block of ledger.blocks()) blocks.push(block)
    // The ledger's order, kept after closing: descends() is answered from the blocks read.
    const index = new BlockIndex(blocks)
    return { blocks, ledger: { descends: async (id, ancestor) => index.descends(id, ancestor) } }
  } finally {
    await ledger.close()
  }
}

/** A run's ledger folder as a RunView, read once (the report's charts). */
export async function readRunView (dir: string): Promise<RunView> {
  const { blocks, ledger } = await readLedgerDir(dir)
  const builder = new RunViewBuilder()
  for (const block of blocks) await builder.apply(block, ledger)
  return builder.view()
}
