import { DuplicateVoteError, NoEvaluationError, UnusableUpdateError, VoteAgainstRuleError } from '../../core/errors.ts'
import type { BlockId, Vote } from '../../core/records.ts'
import { allowedAccepts, assertFollowsTerms, judgementOf } from '../acceptance-terms.ts'
import { federationOf, type StepContext, type StepOptions } from '../context.ts'
import type { ProposalEntry } from '../state.ts'
import { anchorRecord, type AnchorContext } from './anchor.ts'
import { assertJudge } from './evaluate.ts'
import type { Judgement, VoteMeasurement } from '../../core/terms.ts'

export type VoteContext = AnchorContext & Pick<StepContext, 'name' | 'held' | 'state'>

export interface VoteParams {
  entry: ProposalEntry
  accept: boolean
  /** The caller's own reason, appended to the measurement in the vote's rationale. */
  reason?: string
  /** What the vote signs as measured. Only a hostile member (an experiment's colluder) signs anything but its evaluation's. @default my evaluation's */
  measurement?: VoteMeasurement
  /** What took the step (a model's spec, or `policy`); recorded in the vote. */
  decidedBy?: string
  /** Who may decide accept (records.ts Judgement); recorded in the vote and enforced here. @default the charter's terms' (rule when they name none; model, the caller's, under a charter without terms) */
  judgement?: Judgement
}

/** Whether I voted on a proposal: anchored and applied, or just cast by me and not yet back from the bus. */
export function hasVoted ({ held, state, identity }: Pick<StepContext, 'held' | 'state' | 'identity'>, proposal: BlockId): boolean {
  return held.cast.has(proposal) || state.proposals.get(proposal)?.votes.has(identity.did) === true
}

/**
 * Casts my vote, signed with what I measured. The protocol's rules hold whatever the caller
 * (an agent's model) wants: only on a proposal whose committee I was drawn for, no vote
 * without my evaluation, one per proposal, an update that cannot be used can only be
 * rejected, and under a charter that states its acceptance terms the vote is what they
 * decide from my measurement.
 */
export async function vote (ctx: VoteContext, { entry, accept, reason, measurement, decidedBy, judgement = judgementOf(ctx.state.charter?.record.acceptance) }: VoteParams, options: StepOptions = {}): Promise<BlockId> {
  assertJudge(ctx, entry)
  const evaluation = ctx.held.evaluations.get(entry.block)
  if (evaluation === undefined) throw new NoEvaluationError(`no vote without an evaluation: evaluate ${entry.block} first`)
  if (hasVoted(ctx, entry.block)) throw new DuplicateVoteError(`${ctx.name} already voted on ${entry.block}`)
  if (accept && evaluation.unusable !== undefined) throw new UnusableUpdateError(`${entry.block} cannot be accepted: ${evaluation.summary}`)
  // A measurement of the caller's own (a colluder's) is what the charter's terms judge below.
  if (measurement === undefined && !allowedAccepts(judgement, evaluation.passes).includes(accept)) {
    throw new VoteAgainstRuleError(`under ${judgement} judgement ${entry.block} can only be ${evaluation.passes ? 'accepted' : 'rejected'}: it ${evaluation.passes ? 'passes' : 'fails'} the acceptance rule`)
  }
  const decision = accept ? 'accept' : 'reject'
  const rationale = `${evaluation.summary}; ${decision}${reason === undefined || reason.trim() === '' ? '' : ` — ${reason.trim()}`}`.slice(0, 1000)
  const score = Number.isFinite(evaluation.score) ? evaluation.score : 0
  const record: Vote = {
    type: 'vote', federation: federationOf(ctx), round: entry.signed.record.round, proposal: entry.block, accept, score, rationale,
    measurement: measurement ?? (evaluation.unusable === undefined ? evaluation.measurement : { unusable: evaluation.unusable }),
    ...(decidedBy === undefined ? {} : { decidedBy }),
    judgement
  }
  // Every peer refuses a vote the charter's terms do not decide as it says: I anchor none.
  const terms = ctx.state.charter?.record.acceptance
  if (terms !== undefined) assertFollowsTerms(terms, record, `my vote on ${entry.block}`, ctx.state.standing(entry.block))
  const block = await ctx.timer.time('vote', () => anchorRecord(ctx, record, options))
  ctx.held.cast.add(entry.block)
  options.onProgress?.({ type: 'conclave:vote:cast', detail: { proposal: entry.block, accept, score, rationale } })
  return block
}
