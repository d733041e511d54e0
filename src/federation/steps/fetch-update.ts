import type { AbortOptions } from '../../core/options.ts'
import type { Weights } from '../../ml/weights.ts'
import { fetchUpdate } from '../content.ts'
import { compressionOf, requireGlobal, type StepContext } from '../context.ts'
import type { ProposalEntry } from '../state.ts'

export type FetchContext = Pick<StepContext, 'name' | 'held' | 'state' | 'store' | 'shared' | 'keepContent'>

/**
 * The Δw a proposal points to, as every peer and the audit decode it: the one I hold, or
 * fetched and decoded by the charter's compression for the federation's model, and pinned:
 * my copy of the run must replay it later, when its proposer's node may be gone and mine has
 * collected its garbage. Members of one process decode it once for all.
 */
export async function fetchProposed (ctx: FetchContext, entry: ProposalEntry, options: AbortOptions = {}): Promise<Weights> {
  const held = ctx.held.deltas.get(entry.block)
  if (held !== undefined) return held
  const ref = entry.signed.record.delta
  const format = { compression: compressionOf(ctx), layout: requireGlobal(ctx).weights }
  const fetch = async (): Promise<Weights> => {
    const weights = await fetchUpdate(ctx.store, ref, format, options)
    if (ctx.keepContent) await ctx.store.pin(ref.cid, options)
    return weights
  }
  if (ctx.shared === undefined) return fetch()
  return ctx.shared.update([ref.cid, ref.sha256, format.compression ?? null, [...format.layout].map(([name, t]) => [name, t.shape])], fetch)
}
