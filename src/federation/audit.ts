import { z } from 'zod'
import {
  ConclaveError, DerivationMismatchError, DuplicateVoteError, EmptyLedgerError,
  ExpiredRecordError, InvalidRecordError, MissingCharterError, NotMemberError,
  ProtocolViolationError, RecordTimeMismatchError, ReplayedNonceError, SelfVoteError, UnknownProposalError, VoteOutsideWindowError
} from '../core/errors.ts'
import type { AbortOptions, ProgressOptions } from '../core/options.ts'
import type { Charter, SignedRecord } from '../core/records.ts'
import { peekRecord } from '../identity/index.ts'
import type { Block, Ledger } from '../ledger/index.ts'
import type { ContentStore } from '../storage/index.ts'
import { MergeReplay } from './merge-replay.ts'
import { FederationState } from './state.ts'

/** A record is named by where it sits on the ledger, what it claims to be and who signed it. */
export const AuditFailure = z.object({
  /** Position of the record on the ledger. */
  seq: z.number().int().nonnegative(),
  block: z.string().nullable(),
  type: z.string().nullable(),
  issuer: z.string().nullable(),
  error: z.object({ name: z.string(), code: z.string(), message: z.string() })
})

/** What `conclave audit --json` prints. */
export const AuditReport = z.object({
  ok: z.boolean(),
  records: z.number().int(),
  proposals: z.number().int(),
  votes: z.number().int(),
  /** Researchers' votes: reactions as many members as the charter's `humanWitnesses` anchored (refused ones, and ones too few anchored, not included). */
  humanVotes: z.number().int(),
  /**
   * Whether the charter counts human votes toward the quorum (then every decision was
   * re-derived with them). The audit checks who may vote, once, in time; that a researcher
   * really made the reaction a human vote names is in the Matrix room, not on the ledger.
   */
  humanVotesCounted: z.boolean(),
  /**
   * Reactions members anchored as researchers' votes that count for nothing, with who anchored
   * each: fewer members than the charter's `humanWitnesses` (a forged 👍, or one the other
   * witnesses missed), or not the researcher's vote on that proposal (hers was another reaction).
   * Whether she made it is in the room: its event id is there to check.
   */
  humanVotesUncounted: z.array(z.object({
    block: z.string(),
    event: z.string(),
    proposal: z.string(),
    researcher: z.string(),
    accept: z.boolean(),
    witnesses: z.array(z.string())
  })),
  decisions: z.number().int(),
  checkpoints: z.number().int(),
  /** sha-256 of the final global model's safetensors bytes. */
  modelHash: z.string().nullable(),
  /**
   * Whether every vote was decided again, from the measurement it signs, by the acceptance
   * terms the charter states (a vote they decide otherwise is refused, and a decision that
   * counts one fails the audit). False: votes not replayable, as under a charter that states
   * no terms (one made before charters did); their accepts are taken as signed.
   */
  votesReplayed: z.boolean(),
  firstFailure: AuditFailure.nullable(),
  /** Anchored records the protocol refuses (non-members, replays, double votes…), as every honest participant did. */
  rejected: z.array(AuditFailure)
})
export type AuditReport = z.infer<typeof AuditReport>
type Rejection = z.infer<typeof AuditFailure>

/** Errors by which the protocol refuses a record; anything else is damage. */
function isProtocolRejection (err: ConclaveError): boolean {
  return [NotMemberError, ReplayedNonceError, DuplicateVoteError, SelfVoteError, UnknownProposalError, DerivationMismatchError,
    VoteOutsideWindowError, RecordTimeMismatchError, ProtocolViolationError, ExpiredRecordError, InvalidRecordError].some(kind => err instanceof kind)
}

export type AuditOptions = AbortOptions & ProgressOptions<{ type: 'conclave:audit:block', seq: number }>

/**
 * Replays the ledger from its charter: re-verifies every block and signature, re-applies
 * every protocol rule, re-derives every decision and re-computes every merge from the
 * stored deltas. Records the protocol refuses are listed, as participants refused them,
 * a recorder's decision or checkpoint that does not follow from the records among them;
 * the audit fails at the first block that is damaged or whose content is broken, and
 * names it. A ledger with no block, or with no charter to start from, fails too.
 */
export async function audit (ledger: Ledger, store: ContentStore, options: AuditOptions = {}): Promise<AuditReport> {
  return (await replay(ledger, store, options)).report
}

/** The audit, and the charter its replay started from (a run directory's audit checks the head against it). */
export async function replay (ledger: Ledger, store: ContentStore, options: AuditOptions = {}): Promise<{ report: AuditReport, charter?: Charter }> {
  const counts = { records: 0, proposals: 0, votes: 0, humanVotes: 0, decisions: 0, checkpoints: 0 }
  const state = new FederationState()
  const report = (firstFailure: AuditReport['firstFailure'], modelHash: string | null, rejected: Rejection[] = []): { report: AuditReport } =>
    ({ report: { ok: firstFailure === null, ...counts, humanVotesCounted: state.charter?.record.humanVotes === 'counted', humanVotesUncounted: uncounted(state), modelHash, votesReplayed: state.charter?.record.acceptance !== undefined, firstFailure, rejected } })

  const structural = await ledger.verify(options)
  if (!structural.ok) {
    return report({ seq: structural.failure.seq, block: structural.failure.id ?? null, type: null, issuer: null, error: describe(structural.failure.error) }, null)
  }

  const merges = new MergeReplay(store, state)
  const rejected: Rejection[] = []
  for await (const block of ledger.blocks(options)) {
    options.signal?.throwIfAborted()
    options.onProgress?.({ type: 'conclave:audit:block', seq: block.seq })
    counts.records++
    let signed: SignedRecord
    try {
      signed = await state.apply(block, { ledger, beforeCommit: merges.beforeCommit })
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      // What honest participants also refuse is history, not damage: a recorder's wrong
      // decision or checkpoint among it, which a standby's then replaces (or the run's head,
      // which members signed for the model they hold, no longer matches). Broken content is damage.
      if (!isProtocolRejection(err)) return report(failureAt(block, err, rejected), null, rejected)
      rejected.push(failureAt(block, err, rejected))
      continue
    }
    try {
      const record = signed.record
      switch (record.type) {
        case 'proposal': counts.proposals++; break
        case 'vote': counts.votes++; break
        case 'human-vote': if (state.countsAsHumanVote(block.id, record)) counts.humanVotes++; break
        case 'decision': counts.decisions++; break
        case 'checkpoint': counts.checkpoints++
      }
      await merges.applied(record, block.id)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      return report(failureAt(block, err), null, rejected)
    }
  }

  const charter = state.charter
  const model = merges.model
  if (charter === undefined || model === undefined) {
    const err = counts.records === 0 ? new EmptyLedgerError('the ledger holds no block') : new MissingCharterError(`none of the ledger's ${counts.records} records is a charter the federation starts from`)
    return report(failureAfter(counts.records, err), null, rejected)
  }
  return { ...report(null, model.sha256, rejected), charter: charter.record }
}

/**
 * The records the audit refused, as members did, in lines a person reads: up to `max`, then
 * how many more (none: no line). A hostile member's refused record leaves the audit ok, so
 * it is shown, not only counted.
 */
export function refusedLines (report: Pick<AuditReport, 'rejected'>, max = 5): string[] {
  const { rejected } = report
  if (rejected.length === 0) return []
  const lines = rejected.slice(0, max).map(r => `  record ${r.seq} (${r.type ?? 'unknown type'}${r.issuer === null ? '' : ` by ${r.issuer}`}): ${r.error.name}: ${r.error.message}`)
  if (rejected.length > max) lines.push(`  and ${rejected.length - max} more (--json lists them)`)
  return [`${rejected.length} record${rejected.length === 1 ? '' : 's'} refused, as every member refused ${rejected.length === 1 ? 'it' : 'them'}:`, ...lines]
}

/** The reactions anchored as researchers' votes that count for nothing, in lines a person reads: up to `max`, then how many more. */
export function uncountedLines (report: Pick<AuditReport, 'humanVotesUncounted'>, max = 5): string[] {
  const uncounted = report.humanVotesUncounted
  if (uncounted.length === 0) return []
  const lines = uncounted.slice(0, max).map(u => `  ${u.accept ? '👍' : '👎'} of ${u.researcher} on ${u.proposal} (event ${u.event}), anchored by ${u.witnesses.join(', ')}`)
  if (uncounted.length > max) lines.push(`  and ${uncounted.length - max} more (--json lists them)`)
  return [`${uncounted.length} reaction${uncounted.length === 1 ? '' : 's'} anchored as a researcher's vote count${uncounted.length === 1 ? 's' : ''} for nothing (too few members anchored ${uncounted.length === 1 ? 'it' : 'them'}, or the researcher's vote was another reaction):`, ...lines]
}

function uncounted (state: FederationState): AuditReport['humanVotesUncounted'] {
  return state.uncountedCitations().map(({ block, record, witnesses }) =>
    ({ block, event: record.event, proposal: record.proposal, researcher: record.researcher, accept: record.accept, witnesses }))
}

/** A failure that is no record's: in the files around the ledger (at `seq`, its record count), or between two copies of it. */
export function failureAfter (seq: number, err: ConclaveError, block: string | null = null): Rejection {
  return { seq, block, type: null, issuer: null, error: describe(err) }
}

/** The failure at `block`; a decision that counts votes the protocol refused (`rejected` so far) names them and why. */
function failureAt (block: Block, err: ConclaveError, rejected: readonly Rejection[] = []): Rejection {
  const { issuer, record } = peekRecord(block.record)
  const counted = record?.type === 'decision' ? rejected.filter(r => r.block !== null && record.votes.includes(r.block)) : []
  const error = describe(err)
  if (counted.length > 0) error.message += `; it counts refused votes: ${counted.map(r => `${r.block} (${r.error.code})`).join(', ')}`
  return { seq: block.seq, block: block.id, type: record?.type ?? null, issuer, error }
}

function describe (err: ConclaveError): { name: string, code: string, message: string } {
  return { name: err.name, code: err.code, message: err.message }
}
