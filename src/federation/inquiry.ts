import type { BlockId, Did, ModelRef } from '../core/records.ts'
import type { FederationState, ProposalEntry, Reputation } from './state.ts'

/**
 * Answers to the questions researchers ask a member about the record: how it voted and why,
 * what a round merged, who stands best, how the global model went, where the run is. Each
 * is read from the member's state, which holds only signed, anchored records; tools/ hands
 * them to a model, the chat policy words them.
 */

export type RecordState = Pick<FederationState, 'charter' | 'global' | 'rounds' | 'proposals' | 'reputation' | 'currentRound'>

/** Who is asking, and how to name members. */
export interface Inquirer {
  me: Did
  nameOf: (did: Did) => string
}

export interface VoteFact { voter: string, accept: boolean, score: number, rationale: string }

export interface ProposalFact {
  proposal: BlockId
  proposer: string
  round: number
  mine: boolean
  decision: { accepted: boolean, accepts: number, rejects: number, required: number } | null
  /** My vote on it, as anchored (null: none, or it is mine). */
  myVote: VoteFact | null
  votes: VoteFact[]
}

/** What to look for; null or absent: any (models that must fill every field say null). */
export interface ProposalQuery {
  /** A proposal id, or at least its first 8 characters. */
  proposal?: string | null
  round?: number | null
  /** A member's name (agent-3). */
  proposer?: string | null
}

/** Proposals that fit the query, oldest first, with every anchored vote and its rationale. */
export function proposalFacts (state: RecordState, who: Inquirer, query: ProposalQuery = {}): ProposalFact[] {
  const ref = query.proposal?.trim()
  return [...state.proposals.values()]
    .filter(e => ref === undefined || ref === null || e.block === ref || (ref.length >= 8 && e.block.startsWith(ref)))
    .filter(e => query.round === undefined || query.round === null || e.signed.record.round === query.round)
    .filter(e => query.proposer === undefined || query.proposer === null || who.nameOf(e.signed.issuer) === query.proposer)
    .map(e => proposalFact(e, who))
}

function proposalFact (e: ProposalEntry, { me, nameOf }: Inquirer): ProposalFact {
  const votes = [...e.votes.entries()].map(([voter, v]) => ({ voter: nameOf(voter), accept: v.signed.record.accept, score: v.signed.record.score, rationale: v.signed.record.rationale }))
  const mine = e.votes.get(me)?.signed.record
  const d = e.decision?.record
  // Most telling first: a small model's prompt may show only the start of a long result.
  return {
    proposal: e.block,
    proposer: nameOf(e.signed.issuer),
    round: e.signed.record.round,
    mine: e.signed.issuer === me,
    decision: d === undefined ? null : { accepted: d.accepted, accepts: d.accepts, rejects: d.rejects, required: d.required },
    myVote: mine === undefined ? null : { voter: nameOf(me), accept: mine.accept, score: mine.score, rationale: mine.rationale },
    votes
  }
}

export interface RoundFact {
  round: number
  /** merged: its checkpoint is anchored; open: proposals may still come or be decided; not started. */
  status: 'merged' | 'open' | 'not started'
  /** The global model after the round (its checkpoint), when merged. */
  model: ModelRef | null
  merged: Array<{ proposal: BlockId, proposer: string }>
  rejected: Array<{ proposal: BlockId, proposer: string }>
  undecided: Array<{ proposal: BlockId, proposer: string }>
}

/** What a round merged into the global model, as its checkpoint says, and what it rejected. */
export function roundFact (state: RecordState, nameOf: Inquirer['nameOf'], round: number): RoundFact {
  const entry = state.rounds.get(round)
  const checkpoint = entry?.checkpoint?.record
  const proposals = (entry?.proposals ?? []).flatMap(id => state.proposals.get(id) ?? [])
  const named = (e: ProposalEntry): { proposal: BlockId, proposer: string } => ({ proposal: e.block, proposer: nameOf(e.signed.issuer) })
  return {
    round,
    status: checkpoint !== undefined ? 'merged' : round === state.currentRound() && state.charter !== undefined ? 'open' : 'not started',
    model: checkpoint?.model ?? null,
    merged: (checkpoint?.merged ?? []).flatMap(id => state.proposals.get(id) ?? []).map(named),
    rejected: proposals.filter(e => e.decision?.record.accepted === false).map(named),
    undecided: proposals.filter(e => e.decision === undefined).map(named)
  }
}

export type Standing = Reputation & { member: string }

/**
 * Members by reputation, best first: most proposals accepted, then fewest rejected, then
 * most votes cast (a member who judges is worth more than one who only proposes), then name.
 */
export function standings (state: RecordState & { members: ReadonlySet<Did> }, nameOf: Inquirer['nameOf']): Standing[] {
  return [...state.members]
    .map(did => ({ member: nameOf(did), ...(state.reputation.get(did) ?? { accepted: 0, rejected: 0, votes: 0 }) }))
    .sort((a, b) => b.accepted - a.accepted || a.rejected - b.rejected || b.votes - a.votes || a.member.localeCompare(b.member))
}

export interface TrendPoint { round: number, model: string, score: number }

/** The global model's score after each merged round, by a member's judge on its own validation examples. */
export interface Trend { metric: string | null, examples: number, points: TrendPoint[] }

/**
 * The global model after each merged round (round 0: the charter's), scored by `score`
 * (a member's judge on its own validation examples): how the federation's model went.
 */
export async function globalTrend (state: RecordState, score: (model: ModelRef) => Promise<{ metric: string, value: number, examples: number }>): Promise<Trend> {
  if (state.charter === undefined) return { metric: null, examples: 0, points: [] }
  const models: Array<{ round: number, model: ModelRef }> = [{ round: 0, model: state.charter.record.initial }]
  for (let round = 1; round <= (state.global?.round ?? 0); round++) {
    const model = state.rounds.get(round)?.checkpoint?.record.model
    if (model !== undefined) models.push({ round, model })
  }
  const trend: Trend = { metric: null, examples: 0, points: [] }
  for (const { round, model } of models) {
    const { metric, value, examples } = await score(model)
    Object.assign(trend, { metric, examples })
    trend.points.push({ round, model: model.sha256, score: value })
  }
  return trend
}

export interface RunStatus {
  federation: string | null
  /** The round proposals go to now; null when there is no charter yet or the run is over. */
  openRound: number | null
  /** The last round merged into the global model (0: none yet). */
  mergedRounds: number
  /** Rounds the run was configured for, when known. */
  plannedRounds: number | null
  /** Every planned round is merged: nothing more will be proposed. */
  finished: boolean
  globalModel: string | null
}

/** Where the run stands, from the ledger and (when known) the rounds it was configured for. */
export function runStatus (state: RecordState, plannedRounds?: number): RunStatus {
  const merged = state.global?.round ?? 0
  const finished = plannedRounds !== undefined && state.charter !== undefined && merged >= plannedRounds
  return {
    federation: state.charter?.record.federation ?? null,
    openRound: state.charter === undefined || finished ? null : state.currentRound(),
    mergedRounds: merged,
    plannedRounds: plannedRounds ?? null,
    finished,
    globalModel: state.global?.model.sha256 ?? null
  }
}
