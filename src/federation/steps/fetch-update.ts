import type { AbortOptions } from '../../core/options.ts'
import type { Weights } from '../../ml/weights.ts'
import { fetchUpdate } from '../content.ts'
import { compressionOf, requireGlobal, type StepContext } from '../context.ts'
import type { ProposalEntry } from '../state.ts'

/** The Δw a proposal points to, as every peer and the audit decode it: by the charter's compression, for the federation's model. */
export async function fetchProposed (ctx: Pick<StepContext, 'name' | 'held' | 'state' | 'store'>, entry: ProposalEntry, options: AbortOptions = {}): Promise<Weights> {
  return fetchUpdate(ctx.store, entry.signed.record.delta, { compression: compressionOf(ctx), layout: requireGlobal(ctx).weights }, options)
}
