import type { BlockId, Did } from '../core/records.ts'

export interface Ballot {
  block: BlockId
  /** A member's DID, or a researcher's Matrix id for a counted human vote. */
  voter: string
  accept: boolean
}

export interface Tally {
  accepted: boolean
  accepts: number
  rejects: number
  required: number
  /** The counted votes' block ids, sorted, so every participant writes the same record. */
  votes: BlockId[]
  /** The members drawn to judge the proposal, in draw order (only where the charter sets a committee). */
  committee?: Did[]
}

/** Σ accepts ≥ required merges the proposal; abstentions count for nothing. */
export function tally (ballots: readonly Ballot[], required: number, committee?: readonly Did[]): Tally {
  const accepts = ballots.filter(b => b.accept).length
  return {
    accepted: accepts >= required,
    accepts,
    rejects: ballots.length - accepts,
    required,
    votes: ballots.map(b => b.block).sort(),
    ...(committee === undefined ? {} : { committee: [...committee] })
  }
}

/**
 * Who anchors round r's decisions and checkpoint, of the members in DID order (`sorted`):
 * they take turns. Everyone else derives the same records and checks the recorder's against their own.
 */
export function recorderInTurn (sorted: readonly Did[], round: number): Did {
  const recorder = sorted[(round - 1) % sorted.length]
  if (recorder === undefined) throw new RangeError('a federation has at least one member')
  return recorder
}
