import { BackendUnavailableError, ConclaveError } from '../../core/errors.ts'
import { whileUnavailable } from '../../core/retry.ts'
import type { StepContext, StepOptions } from '../context.ts'
import type { ProposalEntry } from '../state.ts'
import { fetchProposed, type FetchContext } from './fetch-update.ts'

export type FetchAheadContext = FetchContext & Pick<StepContext, 'logger'>

/**
 * Fetches a proposal's Δw before I judge it, outside my message queue: a member may anchor a
 * proposal whose Δw it lets no one fetch, and my store then looks for it until its timeout
 * (kubo: 30 s) on each of my tries; waited for in my turn, that held up every record after
 * it, my own training and proposing included. Resolves once this Δw and every one fetched
 * ahead before it is held or given up, so that judging in that order measures each update
 * against the same earlier ones as before. Never rejects for the store: a Δw it does not give
 * me in any try (core/retry.ts) is `unfetched`; any other failure of the update's (content
 * that does not match its CID, a model of another shape) is found again when it is judged.
 */
export function fetchAhead (ctx: FetchAheadContext, entry: ProposalEntry, options: StepOptions = {}): Promise<void> {
  const { held, state, logger, name } = ctx
  // A round merged meanwhile needs it no more: what I hold of a round goes when it is merged.
  const open = (): boolean => entry.signed.record.round >= state.currentRound()
  const fetched = whileUnavailable(async () => fetchProposed(ctx, entry, options), {
    signal: options.signal,
    onRetry: (err, seconds) => { logger.warn(`${name} could not fetch the update of ${entry.block} yet; trying again in ${seconds} s`, { reason: err.message }) }
  }).then(delta => {
    if (open()) held.deltas.set(entry.block, delta)
  }, (err: unknown) => {
    if (err instanceof BackendUnavailableError) {
      if (open()) held.unfetched.add(entry.block)
      logger.warn(`${name} could not fetch the update of ${entry.block}; not judging it`, { reason: err.message })
    } else if (!(err instanceof ConclaveError) && options.signal?.aborted !== true) throw err
  }).finally(() => { held.fetching.delete(entry.block) })
  held.fetching.set(entry.block, fetched.catch(() => undefined))
  const turn = Promise.all([held.ahead, fetched]).then(() => undefined)
  held.ahead = turn.catch(() => undefined)
  return turn
}
