import { POLICY, type Did } from '../core/records.ts'
import type { Ledger } from '../ledger/index.ts'
import type { Bus } from '../transport/index.ts'
import type { Participant } from './participant.ts'
import type { ProposalEntry } from './state.ts'

/** How often an agent's model behaved: calls made, valid at once, needing a retry, handed to the policy. */
export interface LlmCounts { calls: number, valid: number, retried: number, fallback: number }

/** Who took each tool's steps: the agent's model, or the protocol policy (its fallback, or its only model). */
export type Decisions = Record<string, { model: number, policy: number }>

/** What an agent did, for the run report. */
export interface Activity { toolCalls: Record<string, number>, llm: LlmCounts, decisions: Decisions }

/**
 * What decides for a participant: the autopilot (plain protocol code) or an agent (a
 * LangGraph loop over the protocol tools, built in agents/). The round clock only says
 * when a round opens; a driver may propose or not, and votes when it decides to.
 */
export interface Driver {
  openRound(round: number): Promise<void>
  /** Before any member's driver opens `round`: starts the work that waits on no one (training), so members' training can overlap. */
  prepareRound?(round: number): Promise<void>
  /** True while the driver has work queued or running. */
  readonly busy: boolean
  /** Resolves when the driver has nothing left to do; rejects with its failure, if any. */
  idle(): Promise<void>
  /** What made the driver fail (an error none of its turns could handle), once it has. */
  readonly failure?: unknown
  /** What the driver did, for the run report (agents only). */
  activity?(): Activity
  /** After a restart: finishes what the driver was doing when it stopped. */
  resume?(): Promise<boolean>
  /** The round's proposal window closed with members silent: judges what came (a rule that judges against the round waits for it). */
  proposalsClosed?(round: number): Promise<void>
  /**
   * Stops at once, as a crash would (agents only; for restart tests and operators): nothing
   * more reaches the disk. Resolves once the write in flight has, so an agent restarted on the
   * same directory in this process meets no write of its killed self.
   */
  kill?(): Promise<void>
  close(): Promise<void>
}

/** Who may steer an agent through its room, and how often anyone may make it answer. */
export interface ChatRules {
  /** Senders whose commands that act (`!pause`, `!resume`, `!propose`, `!federate`) are obeyed, as the bus names senders (Matrix ids). */
  steer: ReadonlySet<string>
  /** At most `messages` answers per sender in any `seconds`, and `others` to everyone but `steer` together. */
  limit: { messages: number, seconds: number, others: number }
}

/**
 * A run's chat rules: its researchers steer, nobody else. Not the members' own accounts: a
 * hostile member's agent would pause the honest ones, which then neither propose nor vote, or
 * resume one a researcher paused (found red-teaming).
 */
export function chatRules (run: { researchers: readonly string[], agent: { chatLimit: ChatRules['limit'] } }): ChatRules {
  return { steer: new Set(run.researchers), limit: run.agent.chatLimit }
}

export interface DriverContext {
  ledger: Ledger
  /** The federation's bus and room: agents hear researchers' chat there and answer. */
  bus: Bus
  room: string
  /** `agent-2` for a member's DID. */
  nameOf: (did: Did) => string
  /** This participant's own directory (agent memory lives there). */
  dir: string
  /** Who may steer an agent through the room, and how often anyone may make it answer. */
  chat: ChatRules
  /** Rounds the run is configured for: past them, an agent says the run has ended. */
  rounds?: number
}

export type DriverFactory = (participant: Participant, context: DriverContext) => Promise<Driver>

/**
 * The participant proposes every round and judges every peer's update it is a judge of
 * (all of them, unless the charter sets a committee) by the rule as it arrives. Resumed, it judges what arrived while it was down; a resumed round may hold its
 * proposal already.
 */
export const autopilot: DriverFactory = async (participant) => ({
  openRound: async (round) => { if (!participant.hasProposed(round)) await participant.propose(round) },
  prepareRound: async (round) => { if (!participant.hasProposed(round)) await participant.trainAhead(round) },
  resume: async () => (await judgeOwed(participant)) > 0,
  proposalsClosed: async () => { await judgeOwed(participant) },
  busy: false,
  idle: async () => {},
  close: async () => {}
})

/** Judges by the rule every proposal of the open round I owe a vote (one judged meanwhile on its arrival is skipped); returns how many. */
async function judgeOwed (participant: Participant): Promise<number> {
  // A Δw my store gave me in no try ahead of judging would hold up my turn as long again.
  const unfetched = await participant.fetchedAhead()
  const owed = unjudged(participant).filter(e => !unfetched.has(e.block))
  for (const { block } of owed) {
    const { passes } = await participant.evaluate(block)
    if (!participant.hasVoted(block)) await participant.vote(block, passes, undefined, { decidedBy: POLICY })
  }
  return owed.length
}

/**
 * Proposals of the open round that I judge (their committee, or every member but the
 * proposer), undecided and without my vote, in ledger order: what a
 * restarted driver owes, since the events that would have had it judge them died with the
 * process (or came while it was down).
 */
export function unjudged (participant: Pick<Participant, 'state' | 'did' | 'hasVoted'>): ProposalEntry[] {
  const { state } = participant
  if (state.charter === undefined) return []
  return (state.rounds.get(state.currentRound())?.proposals ?? []).flatMap(id => state.proposals.get(id) ?? [])
    .filter(e => owesVote(participant, e))
}

/** I judge the proposal (its committee, or every member but the proposer), it is undecided, and I have not voted on it. */
export function owesVote (participant: Pick<Participant, 'state' | 'did' | 'hasVoted'>, entry: ProposalEntry): boolean {
  return participant.state.judges(entry.block).includes(participant.did) && entry.decision === undefined && !participant.hasVoted(entry.block)
}
