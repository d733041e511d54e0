import type { AbortOptions } from '../../core/options.ts'
import { federationOf, requireGlobal, type StepContext } from '../context.ts'
import { anchorRecord, type AnchorContext } from './anchor.ts'
import { merge, mergeInputs, storeMerged, type MergeContext } from './merge.ts'

export type CloseContext = AnchorContext & MergeContext

/**
 * When the validation window closes, the round's recorder anchors a decision per open
 * proposal, then (once they are applied: see recordCheckpoint) the checkpoint; everyone
 * else derives the same records and checks the recorder's against their own. Called for
 * a standby's turn (`rank`, state.ts standbyAt), that standby records what is still open.
 */
export async function closeRound (ctx: CloseContext, { round, rank = 0 }: { round: number, rank?: number }, options: AbortOptions = {}): Promise<void> {
  const { state } = ctx
  // Offered again (round-loop.ts), a round another member checkpointed meanwhile is left alone.
  if (state.currentRound() !== round || !isMyTurn(ctx, round, rank)) return
  const open = (state.rounds.get(round)?.proposals ?? []).flatMap(id => state.proposals.get(id) ?? []).filter(e => e.decision === undefined)
  if (open.length === 0) return recordCheckpoint(ctx, { round }, options)
  // A proposal anchored as the round closed is decided once its judges voted or its window is over (offered again: round-loop.ts).
  const now = ctx.now()
  for (const entry of open.filter(e => now >= state.decidableAt(e.block))) {
    await anchorRecord(ctx, { type: 'decision', federation: federationOf(ctx), round, proposal: entry.block, proposer: entry.signed.issuer, ...state.derive(entry.block) }, options)
  }
}

/**
 * Whether I am the round's recorder (rank 0) or its standby of `rank` and may record now:
 * one member at a time, so none anchors a twin, and not before the round may close.
 */
export function isMyTurn (ctx: Pick<CloseContext, 'state' | 'identity' | 'now'>, round: number, rank: number): boolean {
  const me = ctx.identity.did
  const now = ctx.now()
  return ctx.state.standby(round, rank) === me && ctx.state.mayRecord(me, round, now) && now >= ctx.state.closableAt(round)
}

/** Whether every proposal of the round has its decision: then whoever anchored the last one anchors the checkpoint. */
export function roundDecided ({ state }: Pick<StepContext, 'state'>, round: number): boolean {
  return (state.rounds.get(round)?.proposals ?? []).every(id => state.proposals.get(id)?.decision !== undefined)
}

/**
 * The recorder merges the round's accepted updates, stores the model and anchors the
 * checkpoint: once per merge. Offered its turn again before the checkpoint it anchored came
 * back to it (its own decisions first applied while catching up, their announcements late),
 * it anchored a second, which every peer refused (found red-teaming).
 */
export async function recordCheckpoint (ctx: CloseContext, { round }: { round: number }, options: AbortOptions = {}): Promise<void> {
  const parent = requireGlobal(ctx)
  const inputs = mergeInputs(ctx, round)
  const kept = ctx.held.merged.get(round)
  if (kept?.anchored === true && kept.inputs === inputs) return
  const merged = await merge(ctx, { round }, options)
  const mine = { model: merged, inputs, anchored: false }
  ctx.held.merged.set(round, mine)
  const model = await ctx.timer.time('publish', () => storeMerged(ctx, merged, options))
  await anchorRecord(ctx, { type: 'checkpoint', federation: federationOf(ctx), round, parent: parent.ref.cid, model, merged: ctx.state.accepted(round).map(p => p.block) }, options)
  mine.anchored = true
}
