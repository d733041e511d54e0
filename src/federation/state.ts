import {
  AlreadyAppliedError, AlreadyDecidedError, AlreadyProposedError, InflatedSamplesError, ReplayedUpdateError, CharterExistsError, DerivationMismatchError,
  DuplicateVoteError, NoCharterError, NotMemberError, NotOnCommitteeError, NotRecorderError, NotResearcherError, RecordTimeMismatchError, SelfVoteError,
  PrematureCloseError, PrematureDecisionError, RoundClosingError, UndecidedRoundError, UnknownProposalError, VoteOutsideWindowError, WrongBaseModelError, WrongFederationError,
  WrongRoundError
} from '../core/errors.ts'
import type {
  BlockId, Charter, Checkpoint, Decision, Did, HumanVote, ModelRef, Proposal, SignedRecord, Vote
} from '../core/records.ts'
import { ANCHOR_SKEW_SECONDS } from '../core/limits.ts'
import { assertReachable, requiredAccepts, requiredAmongCounted } from '../core/quorum.ts'
import { NonceRegistry, verifyRecord } from '../identity/index.ts'
import type { Block, Ledger } from '../ledger/index.ts'
import type { Standing } from './acceptance.ts'
import { assertFollowsTerms } from './acceptance-terms.ts'
import { drawCommittee } from './committee.ts'
import { recorderInTurn, tally, type Tally } from './tally.ts'
import type { AcceptanceTerms } from '../core/terms.ts'

export interface ProposalEntry {
  block: BlockId
  /** Its block's time: the ledger's, not the proposer's. Its votes' window opens here. */
  time: number
  signed: SignedRecord<Proposal>
  votes: Map<Did, { block: BlockId, signed: SignedRecord<Vote> }>
  /**
   * Researchers' votes by their Matrix id: the first reaction of theirs the charter's
   * `humanWitnesses` members anchored, the first of them named in `signed`; `countedAt` is the
   * block whose anchoring made it her vote (the w-th), where the audit counts it.
   */
  humans: Map<string, { block: BlockId, signed: SignedRecord<HumanVote>, countedAt: BlockId }>
  /** Who was drawn to judge it, in draw order, where the charter sets a committee. */
  committee?: Did[]
  decision?: { block: BlockId, record: Decision }
}

interface Roster { of: SignedRecord<Charter>, members: ReadonlySet<Did>, sorted: readonly Did[] }

export interface RoundEntry {
  proposals: BlockId[]
  checkpoint?: { block: BlockId, record: Checkpoint }
}

export interface Reputation {
  accepted: number
  rejected: number
  votes: number
}

export interface ApplyOptions {
  /** The ledger the block is on: it orders blocks (a vote must descend from its proposal's block). */
  ledger: Pick<Ledger, 'descends'>
  /**
   * Runs after every protocol check passed and before anything changes: for checks that
   * need content, such as re-computing a checkpoint's merge. If it throws, nothing changes.
   */
  beforeCommit?: (signed: SignedRecord) => Promise<void>
}

/**
 * A member's standing from the decisions of its proposals of earlier rounds: bad after `strikes`
 * (one unless set) rejected, new while none merged, good after; under `probationOnce`, good too
 * once one was rejected (short of the strikes), merged or not.
 */
export function standingOf ({ merged, rejected }: { merged: number, rejected: number }, { strikes = 1, probationOnce }: Pick<AcceptanceTerms, 'strikes' | 'probationOnce'> = {}): Standing {
  if (rejected >= strikes) return 'bad'
  return merged === 0 && (rejected === 0 || probationOnce !== true) ? 'new' : 'good'
}

/**
 * One participant's view of the federation, built only from signed, anchored records.
 * Every rule of the protocol is checked here, once, for live participants and the audit
 * alike: whoever applies the same blocks ends in the same state.
 *
 * Time is the ledger's: a record must be signed within ANCHOR_SKEW_SECONDS of its block's
 * time, and a vote counts only if its block descends from its proposal's block and is dated
 * at most the charter's window after it. Block times never go back along parents, so a vote
 * cannot be dated before the proposal it follows, and a signer's backdated `iat` buys nothing.
 * Under a charter that states its acceptance terms, a vote counts only if they decide, from
 * the measurement it signs, what it says.
 */
export class FederationState {
  charter?: SignedRecord<Charter>
  readonly proposals = new Map<BlockId, ProposalEntry>()
  readonly rounds = new Map<number, RoundEntry>()
  readonly reputation = new Map<Did, Reputation>()
  /** Every proposal by its Δw's sha-256 and by its CID: a re-sent update is found without a scan. */
  readonly #byContent = new Map<string, BlockId>()
  /**
   * Every anchored citation of a reaction (its event, proposal, researcher, 👍/👎 and round),
   * with the members that anchored it: it is its researcher's vote once the charter's
   * `humanWitnesses` have. By the whole citation, not the event: a hostile member citing a real
   * event otherwise first would keep out the honest members' copies (found red-teaming).
   */
  readonly #citations = new Map<string, { block: BlockId, signed: SignedRecord<HumanVote>, witnesses: Set<Did> }>()
  /** The citation each reaction that is a researcher's vote backs: one reaction backs one human vote. */
  readonly #votedEvents = new Map<string, string>()
  /** Which citation each member anchored for a researcher on a proposal: one each. */
  readonly #witnessed = new Map<string, string>()
  /** The model everyone trains from: the charter's, then each round's checkpoint. */
  global?: { round: number, model: ModelRef }
  readonly #nonces = new NonceRegistry()
  readonly #applied = new Set<BlockId>()
  /** The charter's members as a set and in DID order, made once per charter: every record applied asks them. */
  #roster?: Roster
  /** Who has proposed in each round: a second proposal is refused without a scan of the round's. */
  readonly #proposers = new Map<number, Set<Did>>()
  /** When the current round opened: its charter's or the last checkpoint's block time (standbyAt). */
  #openedAt = 0
  /** Each member's decided proposals, (round, merged): standing is asked of every vote, and a scan of every proposal grew with the ledger. */
  readonly #decisions = new Map<Did, Array<{ round: number, merged: boolean }>>()

  get members (): ReadonlySet<Did> {
    return this.charter === undefined ? new Set() : this.#rosterOf(this.charter).members
  }
  /** Accepts that merge a proposal: of every peer, or of its committee where the charter sets one. */
  get required (): number {
    const charter = this.#charter()
    return requiredAccepts(charter.record.quorum, charter.record.members.length, charter.record.committee)
  }

  /** Who may vote on a proposal: its committee, or else every member but its proposer. */
  judges (proposal: BlockId): Did[] {
    const entry = this.#proposal(proposal)
    return entry.committee ?? this.#charter().record.members.filter(m => m !== entry.signed.issuer)
  }

  has (block: BlockId): boolean { return this.#applied.has(block) }

  /**
   * The proposer's standing as its proposal's votes are judged: bad once decision records have
   * rejected as many of its proposals of earlier rounds as the charter's strikes (one unless
   * set), new while none of them is merged (unless the charter's probationOnce and one was
   * rejected), good after. Every earlier round is decided before
   * this one's proposals (a checkpoint needs every decision, a proposal the checkpoint), so
   * every peer and the audit derive the same standing for every vote.
   */
  standing (proposal: BlockId): Standing {
    const { signed } = this.#proposal(proposal)
    return this.memberStanding(signed.issuer, signed.record.round)
  }

  /** A member's standing as round `round` is judged: from the decisions of its proposals of earlier rounds. */
  memberStanding (member: Did, round: number): Standing {
    return standingOf(this.#decided(member, round), this.#charter().record.acceptance)
  }

  /** How many of a member's proposals of rounds before `round` the record has merged and rejected. */
  #decided (member: Did, round: number): { merged: number, rejected: number } {
    let merged = 0
    let rejected = 0
    for (const d of this.#decisions.get(member) ?? []) {
      if (d.round >= round) continue
      if (d.merged) merged++
      else rejected++
    }
    return { merged, rejected }
  }

  /** Verifies the block's record and applies it; throws a named error and changes nothing if invalid. */
  async apply (block: Block, options: ApplyOptions): Promise<SignedRecord> {
    if (this.#applied.has(block.id)) throw new AlreadyAppliedError(`block ${block.id} was already applied`)
    const signed = await verifyRecord(block.record, {
      members: this.charter === undefined ? undefined : this.members,
      // Valid when the ledger anchored it (its iat is held to that time below), as the audit
      // replays it: a member catching up hours later, or a short-lived record, gets the same answer.
      now: block.time
    })
    if (Math.abs(signed.issuedAt - block.time) > ANCHOR_SKEW_SECONDS) {
      throw new RecordTimeMismatchError(`${signed.record.type} record in block ${block.id} is signed at ${signed.issuedAt} but anchored at ${block.time}, more than ${ANCHOR_SKEW_SECONDS} s apart`)
    }
    this.#nonces.assertFresh(signed.issuer, signed.nonce)
    await this.#check(signed, block, options.ledger)
    await options.beforeCommit?.(signed)
    this.#nonces.claim(signed.issuer, signed.nonce)
    this.#commit(signed, block)
    this.#applied.add(block.id)
    return signed
  }

  /**
   * What the recorder must write for a proposal, from the votes applied so far: the members',
   * and the researchers' where the charter counts them.
   */
  derive (proposal: BlockId): Tally {
    const entry = this.#proposal(proposal)
    const charter = this.#charter().record
    const excluding = charter.acceptance?.excludeRejected === true
    // Under excludeRejected, a member the record has rejected neither votes nor counts in the quorum (votes come from judges only).
    const judges = this.judges(proposal)
    const rejected = new Set(excluding ? judges.filter(m => this.#decided(m, entry.signed.record.round).rejected > 0) : [])
    const ballots = [...entry.votes.entries()].filter(([voter]) => !rejected.has(voter)).map(([voter, v]) => ({ block: v.block, voter, accept: v.signed.record.accept }))
    const humans = charter.humanVotes === 'counted'
      ? [...entry.humans.entries()].map(([voter, v]) => ({ block: v.block, voter, accept: v.signed.record.accept }))
      : []
    const required = excluding ? requiredAmongCounted(charter.quorum, judges.length - rejected.size) : this.required
    return tally([...ballots, ...humans], required, entry.committee)
  }

  /**
   * Accepted proposals of a round in merge order: by the delta's content hash, so the
   * float sums (and the model hash) depend on what was merged, not on ids or timing.
   */
  accepted (round: number): ProposalEntry[] {
    const key = (p: ProposalEntry): string => p.signed.record.delta.sha256 + p.block
    return (this.rounds.get(round)?.proposals ?? [])
      .map(id => this.#proposal(id))
      .filter(p => p.decision?.record.accepted === true)
      .sort((a, b) => key(a) < key(b) ? -1 : 1)
  }

  recorder (round: number): Did { return recorderInTurn(this.#rosterOf(this.#charter()).sorted, round) }

  /** The member `rank` places after round `round`'s recorder in DID order (rank 0: the recorder), who stands in for it in turn. */
  standby (round: number, rank: number): Did {
    const { sorted } = this.#rosterOf(this.#charter())
    return recorderInTurn(sorted, round + rank)
  }

  /**
   * From when the standby of `rank` may record the current round `round`: `rank` windows past
   * its last proposal's window, as the ledger dates blocks, or past a window after the round
   * opened if that is later (or a standby could close a round whose members are still
   * training); undefined once every member has had its turn. A recorder that never records
   * would otherwise stop the federation: no one else may record its round.
   */
  standbyAt (round: number, rank: number): number | undefined {
    const { members, windowSeconds } = this.#charter().record
    if (rank < 1 || rank >= members.length) return undefined
    const due = Math.max(this.#openedAt + windowSeconds, ...(this.rounds.get(round)?.proposals ?? []).map(id => this.#proposal(id).time + windowSeconds))
    return due + rank * windowSeconds
  }

  /**
   * From when the current round `round` may be closed (a decision or its checkpoint), as the
   * ledger dates blocks: at once when every member has proposed, else a window after it
   * opened. A recorder that closed it sooner would cut off the proposals still due: a
   * proposal after its round's first decision is refused.
   */
  closableAt (round: number): number {
    const { members, windowSeconds } = this.#charter().record
    // A round already checkpointed (a peer recorded it while I waited) keeps no one waiting: its opening time is gone.
    if (round !== this.currentRound()) return -Infinity
    return (this.rounds.get(round)?.proposals.length ?? 0) >= members.length ? -Infinity : this.#openedAt + windowSeconds
  }

  /**
   * From when proposal `id` may be decided, as the ledger dates blocks: at once when every
   * judge has voted on it, else once its window is over; where the charter counts researchers'
   * votes, always once its window is over, since a researcher may react until then. A recorder
   * deciding sooner would cut off the votes still due (PrematureDecisionError): under
   * `counted`, a reaction it leaves out before a standby anchors it, or, waiting only for every
   * researcher's vote, one it forges to have them all (both found red-teaming).
   */
  decidableAt (id: BlockId): number {
    const entry = this.#proposal(id)
    const { windowSeconds, humanVotes } = this.#charter().record
    return humanVotes !== 'counted' && this.judges(id).every(j => entry.votes.has(j)) ? -Infinity : entry.time + windowSeconds + 1
  }

  /** Whether the human vote in `block` made its reaction its researcher's vote (the charter's `humanWitnesses`-th to anchor it), not a copy (#checkHumanVote). */
  countsAsHumanVote (block: BlockId, { proposal, researcher }: Pick<HumanVote, 'proposal' | 'researcher'>): boolean {
    return this.proposals.get(proposal)?.humans.get(researcher)?.countedAt === block
  }

  /**
   * Reactions anchored as researchers' votes that count for nothing, in the order they were
   * first anchored, with who anchored each: fewer members than the charter's `humanWitnesses`
   * (a forged one, or one the other witnesses missed), or not her vote on that proposal.
   */
  uncountedCitations (): Array<{ block: BlockId, record: HumanVote, witnesses: Did[] }> {
    return [...this.#citations].filter(([key, { signed }]) => this.#votedEvents.get(signed.record.event) !== key)
      .map(([, { block, signed, witnesses }]) => ({ block, record: signed.record, witnesses: [...witnesses] }))
  }

  /** Whether `member` may record round `round` in a block dated `time`: its recorder, or a standby whose turn has come. */
  mayRecord (member: Did, round: number, time: number): boolean {
    if (member === this.recorder(round)) return true
    const { members } = this.#charter().record
    for (let rank = 1; rank < members.length; rank++) {
      if (this.standby(round, rank) === member) return time >= (this.standbyAt(round, rank) ?? Infinity)
    }
    return false
  }

  currentRound (): number { return (this.global?.round ?? 0) + 1 }

  async #check (signed: SignedRecord, block: Block, ledger: ApplyOptions['ledger']): Promise<void> {
    const record = signed.record
    if (record.type === 'charter') {
      if (this.charter !== undefined) throw new CharterExistsError('the federation already has a charter')
      if (!record.members.includes(signed.issuer)) throw new NotMemberError('the charter must be signed by a member')
      assertReachable(record.quorum, record.members.length, record.committee)
      return
    }
    const charter = this.#charter()
    if (record.federation !== charter.record.federation) {
      throw new WrongFederationError(`record for federation ${record.federation}, not ${charter.record.federation}`)
    }
    switch (record.type) {
      case 'proposal': return this.#checkProposal(signed as SignedRecord<Proposal>)
      case 'vote': return this.#checkVote(signed as SignedRecord<Vote>, block, ledger)
      case 'human-vote': return this.#checkHumanVote(signed as SignedRecord<HumanVote>, block, ledger)
      case 'decision': return this.#checkDecision(signed as SignedRecord<Decision>, block)
      case 'checkpoint': return this.#checkCheckpoint(signed as SignedRecord<Checkpoint>, block)
    }
  }

  #checkProposal (signed: SignedRecord<Proposal>): void {
    const { record, issuer } = signed
    const round = this.currentRound()
    if (record.round !== round) throw new WrongRoundError(`proposal for round ${record.round} while round ${round} is open`)
    if (record.base !== this.global?.model.cid) throw new WrongBaseModelError(`proposal trained from ${record.base}, not the global model ${this.global?.model.cid}`)
    if (this.#proposers.get(round)?.has(issuer) === true) throw new AlreadyProposedError(`${issuer} already proposed in round ${round}`)
    if ((this.rounds.get(round)?.proposals ?? []).some(id => this.proposals.get(id)?.decision !== undefined)) {
      throw new RoundClosingError(`proposal for round ${round} after its first decision: the round is closing`)
    }
    const charter = this.#charter().record
    const declared = charter.samples?.[charter.members.indexOf(issuer)]
    if (declared !== undefined && record.numSamples > declared) throw new InflatedSamplesError(`${issuer} claims ${record.numSamples} samples, it declared ${declared} in the charter`)
    const earlier = this.proposals.get(this.#byContent.get(record.delta.sha256) ?? this.#byContent.get(record.delta.cid) ?? '')
    if (earlier !== undefined) throw new ReplayedUpdateError(`${issuer} re-sends the update of proposal ${earlier.block} (round ${earlier.signed.record.round})`)
  }

  async #checkVote (signed: SignedRecord<Vote>, block: Block, ledger: ApplyOptions['ledger']): Promise<void> {
    const { record, issuer } = signed
    const entry = this.proposals.get(record.proposal)
    if (entry === undefined) throw new UnknownProposalError(`vote on ${record.proposal}, which is not an anchored proposal`)
    if (entry.signed.issuer === issuer) throw new SelfVoteError(`${issuer} voted on its own proposal`)
    if (entry.committee !== undefined && !entry.committee.includes(issuer)) {
      throw new NotOnCommitteeError(`${issuer} voted on ${record.proposal}, whose committee drawn from round ${record.round}'s base model is ${entry.committee.join(', ')}`)
    }
    if (entry.votes.has(issuer)) throw new DuplicateVoteError(`${issuer} already voted on ${record.proposal}`)
    if (record.round !== entry.signed.record.round) throw new WrongRoundError(`vote says round ${record.round}, its proposal is in round ${entry.signed.record.round}`)
    await this.#assertInWindow(entry, block, ledger, 'vote')
    const terms = this.#charter().record.acceptance
    if (terms !== undefined) assertFollowsTerms(terms, record, `vote in block ${block.id}`, this.standing(entry.block))
  }

  /**
   * A researcher's vote, anchored by a member: only for the charter's researchers, one per
   * researcher and proposal and one per reaction event (the same anchored again is a copy,
   * counted once: a witness), in the proposal's window like a member's vote. That the
   * researcher made the reaction is not on the ledger: the room holds the event (human-votes.ts
   * checks it there). So a reaction is the researcher's vote only once the charter's
   * `humanWitnesses` members have anchored it; until then another of theirs may be anchored
   * (a forged one anchored first keeps out no real one), one per member.
   */
  async #checkHumanVote (signed: SignedRecord<HumanVote>, block: Block, ledger: ApplyOptions['ledger']): Promise<void> {
    const { record, issuer } = signed
    if (!(this.#charter().record.researchers ?? []).includes(record.researcher)) throw new NotResearcherError(`${record.researcher} is not among the charter's researchers`)
    const entry = this.proposals.get(record.proposal)
    if (entry === undefined) throw new UnknownProposalError(`human vote on ${record.proposal}, which is not an anchored proposal`)
    const citation = citationKey(record)
    const mine = this.#witnessed.get(witnessKey(record, issuer))
    if (mine !== undefined && mine !== citation) throw new DuplicateVoteError(`${issuer} already anchored another reaction as ${record.researcher}'s vote on ${record.proposal}`)
    const voted = this.#votedEvents.get(record.event)
    if (voted !== undefined && voted !== citation) throw new DuplicateVoteError(`reaction ${record.event} already backs another human vote`)
    // The same reaction anchored again (a standby's, while the recorder's was on its way; another witness) is a copy.
    if (this.#citations.has(citation)) return this.#assertInWindow(entry, block, ledger, 'human vote')
    if (entry.humans.has(record.researcher)) throw new DuplicateVoteError(`${record.researcher} already voted on ${record.proposal}`)
    if (record.round !== entry.signed.record.round) throw new WrongRoundError(`human vote says round ${record.round}, its proposal is in round ${entry.signed.record.round}`)
    await this.#assertInWindow(entry, block, ledger, 'human vote')
  }

  /** A vote counts only before its proposal's decision, after its proposal on the ledger, and within the charter's window. */
  async #assertInWindow (entry: ProposalEntry, block: Block, ledger: ApplyOptions['ledger'], what: string): Promise<void> {
    if (entry.decision !== undefined) throw new VoteOutsideWindowError(`${what} on ${entry.block} came after its decision`)
    if (!await ledger.descends(block.id, entry.block)) {
      throw new VoteOutsideWindowError(`${what} in block ${block.id} does not descend from its proposal's block ${entry.block}: the ledger does not order it after the proposal`)
    }
    const window = this.#charter().record.windowSeconds
    if (block.time > entry.time + window) {
      throw new VoteOutsideWindowError(`${what} on ${entry.block} was anchored ${block.time - entry.time} s after it, past its ${window} s window`)
    }
  }

  #checkDecision (signed: SignedRecord<Decision>, block: Block): void {
    const { record, issuer } = signed
    this.#assertRecorder(issuer, record.round, 'decision', block)
    const entry = this.proposals.get(record.proposal)
    if (entry === undefined) throw new UnknownProposalError(`decision on ${record.proposal}, which is not an anchored proposal`)
    if (entry.decision !== undefined) throw new AlreadyDecidedError(`${record.proposal} was already decided`)
    const derived = { ...this.derive(record.proposal), proposer: entry.signed.issuer, round: entry.signed.record.round }
    // In the derivation's key order; an absent committee drops out of both texts.
    const claimed = { accepted: record.accepted, accepts: record.accepts, rejects: record.rejects, required: record.required, votes: record.votes, committee: record.committee, proposer: record.proposer, round: record.round }
    if (JSON.stringify(claimed) !== JSON.stringify(derived)) {
      throw new DerivationMismatchError(`decision in block ${block.id} says ${JSON.stringify(claimed)}, the anchored votes give ${JSON.stringify(derived)}`)
    }
    this.#assertClosable(record.round, block, 'decision')
    // A recorder may not cut off the votes still due: it decides once every judge voted, or once no vote can come.
    const judges = this.judges(entry.block)
    const window = this.#charter().record.windowSeconds
    if (block.time < this.decidableAt(entry.block)) {
      const waits = this.#charter().record.humanVotes === 'counted' ? ', which a charter counting researchers\' votes waits out' : ''
      throw new PrematureDecisionError(`decision in block ${block.id} came ${block.time - entry.time} s after its proposal, inside its ${window} s window${waits}, with ${judges.filter(j => entry.votes.has(j)).length} of its ${judges.length} judges' votes in`)
    }
  }

  #assertClosable (round: number, block: Block, what: string): void {
    const at = this.closableAt(round)
    if (block.time < at) {
      const { members, windowSeconds } = this.#charter().record
      throw new PrematureCloseError(`${what} in block ${block.id} closes round ${round} ${block.time - this.#openedAt} s after it opened, inside its ${windowSeconds} s window, with ${this.rounds.get(round)?.proposals.length ?? 0} of its ${members.length} members' proposals in`)
    }
  }

  #checkCheckpoint (signed: SignedRecord<Checkpoint>, block: Block): void {
    const { record, issuer } = signed
    this.#assertRecorder(issuer, record.round, 'checkpoint', block)
    if (record.round !== this.currentRound()) throw new WrongRoundError(`checkpoint for round ${record.round} while round ${this.currentRound()} is open`)
    this.#assertClosable(record.round, block, 'checkpoint')
    if (record.parent !== this.global?.model.cid) throw new WrongBaseModelError(`checkpoint parent ${record.parent} is not the global model`)
    const undecided = (this.rounds.get(record.round)?.proposals ?? []).filter(id => this.#proposal(id).decision === undefined)
    if (undecided.length > 0) throw new UndecidedRoundError(`checkpoint before proposals ${undecided.join(', ')} were decided`)
    const merged = this.accepted(record.round).map(p => p.block)
    if (JSON.stringify(merged) !== JSON.stringify(record.merged)) {
      throw new DerivationMismatchError(`checkpoint merges ${JSON.stringify(record.merged)}, the decisions accept ${JSON.stringify(merged)}`)
    }
  }

  #commit (signed: SignedRecord, block: Block): void {
    const record = signed.record
    switch (record.type) {
      case 'charter':
        this.charter = signed as SignedRecord<Charter>
        this.global = { round: 0, model: record.initial }
        this.#openedAt = block.time
        for (const m of record.members) this.reputation.set(m, { accepted: 0, rejected: 0, votes: 0 })
        return
      case 'proposal': {
        const { committee, committeeDraw, members } = this.#charter().record
        const slot = { federation: record.federation, round: record.round, base: record.base, proposer: signed.issuer }
        this.proposals.set(block.id, {
          block: block.id, time: block.time, signed: signed as SignedRecord<Proposal>, votes: new Map(), humans: new Map(),
          ...(committee === undefined ? {} : { committee: drawCommittee(slot, members, committee, committeeDraw ?? 'did') })
        })
        this.#byContent.set(record.delta.sha256, block.id).set(record.delta.cid, block.id)
        this.#proposers.set(record.round, (this.#proposers.get(record.round) ?? new Set()).add(signed.issuer))
        const round = this.rounds.get(record.round) ?? { proposals: [] }
        round.proposals.push(block.id)
        this.rounds.set(record.round, round)
        return
      }
      case 'vote':
        this.#proposal(record.proposal).votes.set(signed.issuer, { block: block.id, signed: signed as SignedRecord<Vote> })
        this.#reputation(signed.issuer).votes++
        return
      case 'human-vote': {
        const { humans } = this.#proposal(record.proposal)
        const citation = citationKey(record)
        const cited = this.#citations.get(citation) ?? { block: block.id, signed: signed as SignedRecord<HumanVote>, witnesses: new Set<Did>() }
        this.#citations.set(citation, cited)
        cited.witnesses.add(signed.issuer)
        this.#witnessed.set(witnessKey(record, signed.issuer), citation)
        // The researcher's vote is the first citation of theirs enough members anchored, of a reaction backing no other; more copies change nothing.
        if (!humans.has(record.researcher) && !this.#votedEvents.has(record.event) && cited.witnesses.size >= (this.#charter().record.humanWitnesses ?? 1)) {
          humans.set(record.researcher, { block: cited.block, signed: cited.signed, countedAt: block.id })
          this.#votedEvents.set(record.event, citation)
        }
        return
      }
      case 'decision': {
        const entry = this.#proposal(record.proposal)
        entry.decision = { block: block.id, record }
        const decided = this.#decisions.get(entry.signed.issuer) ?? []
        decided.push({ round: entry.signed.record.round, merged: record.accepted })
        this.#decisions.set(entry.signed.issuer, decided)
        const rep = this.#reputation(record.proposer)
        if (record.accepted) rep.accepted++
        else rep.rejected++
        return
      }
      case 'checkpoint': {
        const round = this.rounds.get(record.round) ?? { proposals: [] }
        round.checkpoint = { block: block.id, record }
        this.rounds.set(record.round, round)
        this.global = { round: record.round, model: record.model }
        this.#openedAt = block.time
      }
    }
  }

  #assertRecorder (issuer: Did, round: number, what: string, block: Block): void {
    if (this.mayRecord(issuer, round, block.time)) return
    throw new NotRecorderError(`${issuer} anchored a ${what} for round ${round} at ${block.time}, whose recorder is ${this.recorder(round)} and whose standbys' turns have not come to it`)
  }

  #rosterOf (charter: SignedRecord<Charter>): Roster {
    if (this.#roster?.of !== charter) this.#roster = { of: charter, members: new Set(charter.record.members), sorted: [...charter.record.members].sort() }
    return this.#roster
  }

  #charter (): SignedRecord<Charter> {
    if (this.charter === undefined) throw new NoCharterError('no charter: the ledger must start with one')
    return this.charter
  }

  #proposal (id: BlockId): ProposalEntry {
    const entry = this.proposals.get(id)
    if (entry === undefined) throw new UnknownProposalError(`${id} is not an anchored proposal`)
    return entry
  }

  #reputation (did: Did): Reputation {
    const rep = this.reputation.get(did)
    if (rep === undefined) throw new NotMemberError(`${did} has no reputation entry`)
    return rep
  }
}

/** A member's anchoring of a researcher's vote on a proposal: one reaction each. */
const witnessKey = ({ proposal, researcher }: Pick<HumanVote, 'proposal' | 'researcher'>, member: Did): string => `${proposal} ${researcher} ${member}`

/** What a human vote says of its reaction: witnesses anchor the same citation. */
const citationKey = ({ event, proposal, researcher, accept, round }: HumanVote): string => JSON.stringify([event, proposal, researcher, accept, round])
