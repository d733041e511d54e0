/**
 * One error class per failure, all under ConclaveError. `name` and `code` derive from the
 * class so tests and callers branch on them, never on message text.
 */
export class ConclaveError extends Error {
  readonly code: string

  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = codeOf(new.target.name)
  }
}

/** `BadSignatureError` → `ERR_BAD_SIGNATURE` */
function codeOf (name: string): string {
  const stem = name.replace(/Error$/, '') || 'Conclave'
  return 'ERR_' + stem.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

/** A configuration file or flag that does not describe a runnable federation. */
export class ConfigError extends ConclaveError {}
/**
 * A run directory Conclave may not write into: one that holds files no Conclave run made,
 * or an earlier run that `--force` was not given to replace.
 */
export class RunDirectoryError extends ConfigError {}
/** A command typed in a room (`!federate …`) that does not say what to do: its reply names what is wrong. */
export class BadCommandError extends ConclaveError {}
/** A call to federate that too few agents answered. */
export class NotEnoughAgentsError extends ConclaveError {}
/** A record or message that does not parse or does not match its schema. */
export class InvalidRecordError extends ConclaveError {}
/** A JWT whose signature does not verify against its issuer's DID. */
export class BadSignatureError extends ConclaveError {}
/** A record signed by a DID that is not a member of the federation. */
export class NotMemberError extends ConclaveError {}
/** A record past its `exp`, or issued in the future. */
export class ExpiredRecordError extends ConclaveError {}
/** A nonce this participant has already seen from the same issuer. */
export class ReplayedNonceError extends ConclaveError {}
/** A second vote by the same DID on the same proposal. */
export class DuplicateVoteError extends ConclaveError {}
/** A vote cast by the proposer on its own proposal. */
export class SelfVoteError extends ConclaveError {}
/** A vote that references a proposal nobody anchored. */
export class UnknownProposalError extends ConclaveError {}
/** A vote anchored after its proposal's validation window closed. */
export class VoteOutsideWindowError extends ConclaveError {}
/** A record whose signed issue time (`iat`) is further from its block's time than the allowed skew. */
export class RecordTimeMismatchError extends ConclaveError {}
/** A block dated ahead of the receiver's clock, before a block it approves, or far behind the newest block the receiver holds. */
export class ImplausibleBlockTimeError extends ConclaveError {}
/** A block waiting for its parents beyond its signer's share of the blocks a replica holds for them. */
export class OrphanLimitError extends ConclaveError {}
/** A record announced on the bus that the ledger does not hold. */
export class NotAnchoredError extends ConclaveError {}
/**
 * A record, or a step a member is asked to take, that does not follow the protocol's
 * sequence. Each way of breaking it is its own class below; callers that only need to
 * know "the protocol refuses this" (the audit) test for this parent.
 */
export class ProtocolViolationError extends ConclaveError {}
/** Nothing happens before the charter: a record ahead of it on the ledger, or a step before the member applied it. */
export class NoCharterError extends ProtocolViolationError {}
/** A charter that is not the one the member agreed to (a lobby's call: its members, task, seed or quorum). */
export class UnexpectedCharterError extends ProtocolViolationError {}
/** A second charter for a federation that has one. */
export class CharterExistsError extends ProtocolViolationError {}
/** A record naming another federation. */
export class WrongFederationError extends ProtocolViolationError {}
/** A proposal or checkpoint for a round that is not open, or a vote whose round is not its proposal's. */
export class WrongRoundError extends ProtocolViolationError {}
/** A proposal trained from, or a checkpoint built on, a model other than the current global one. */
export class WrongBaseModelError extends ProtocolViolationError {}
/** A second proposal by the same member in one round. */
export class AlreadyProposedError extends ProtocolViolationError {}
/** A decision or checkpoint anchored by a member who is not the round's recorder. */
export class NotRecorderError extends ProtocolViolationError {}
/** A second decision on one proposal. */
export class AlreadyDecidedError extends ProtocolViolationError {}
/** A proposal anchored after its round's first decision: the round is closing, and its checkpoint would wait for a decision nobody makes. */
export class RoundClosingError extends ProtocolViolationError {}
/** A decision anchored while its proposal's window is open and some of its judges have not voted: it would cut their votes off. */
export class PrematureDecisionError extends ProtocolViolationError {}
/** A decision or checkpoint anchored before every member proposed and before its round had been open a window: it would cut off the proposals still due. */
export class PrematureCloseError extends ProtocolViolationError {}
/** A checkpoint anchored before every proposal of its round was decided. */
export class UndecidedRoundError extends ProtocolViolationError {}
/** A block applied a second time to the same state. */
export class AlreadyAppliedError extends ProtocolViolationError {}
/** A second draft for a round the member already trained for. */
export class DraftExistsError extends ProtocolViolationError {}
/** Publishing or proposing with no trained draft. */
export class NoDraftError extends ProtocolViolationError {}
/** Proposing a draft whose Δw is not in the content store yet. */
export class UnpublishedDraftError extends ProtocolViolationError {}
/** A vote without the voter's own evaluation of the proposal. */
export class NoEvaluationError extends ProtocolViolationError {}
/** Accepting an update that cannot be used (missing, mislabelled or malformed content). */
export class UnusableUpdateError extends ProtocolViolationError {}
/** Distilling for a task that learns from its labels, or as a member with no teacher. */
export class NothingToDistilError extends ProtocolViolationError {}
/** A proposal that re-sends an update already proposed (the same content): a replay or a free ride. */
export class ReplayedUpdateError extends ProtocolViolationError {}
/** A proposal claiming more training samples than its proposer declared in the charter. */
export class InflatedSamplesError extends ProtocolViolationError {}
/**
 * A vote, under a charter that names its acceptance rule, without the measurement that rule
 * decides from (or without a value the rule reads): nobody could decide it again.
 */
export class UnmeasuredVoteError extends ProtocolViolationError {}
/** A vote whose accept is not what the charter's rule decides from the measurement the voter signed with it. */
export class VoteAgainstRuleError extends ProtocolViolationError {}
/** A vote that declares a judgement mode other than the charter's: its label would say who may decide it falsely. */
export class JudgementMismatchError extends ProtocolViolationError {}
/** A human vote for someone the charter does not name as a researcher. */
export class NotResearcherError extends ProtocolViolationError {}
/** An update my judge scores as NaN, infinite or beyond what a vote may sign: it cannot be judged, only rejected. */
export class UnmeasurableUpdateError extends ConclaveError {}
/** A call that gave no answer within its time (a model server that took the request and stalls). */
export class DeadlineError extends ConclaveError {}
/**
 * A vote on a proposal by a member its committee was not drawn from, or a member asked to
 * judge such a proposal: where the charter sets a committee, only the k members drawn vote.
 */
export class NotOnCommitteeError extends ProtocolViolationError {}
/** Bytes that do not hash to the CID they were asked for under. */
export class ContentMismatchError extends ConclaveError {}
/** A CID the store does not hold. */
export class ContentNotFoundError extends ConclaveError {}
/** A store that could not record what it was asked to keep (a pin's records): its disk, not the content. */
export class StoreWriteError extends ConclaveError {}
/** A payload larger than the configured limit. */
export class PayloadTooLargeError extends ConclaveError {}
/** A backend (daemon, node, homeserver) that cannot be reached. */
export class BackendUnavailableError extends ConclaveError {}
/** A ledger block whose hash, parents, proof of work or signature does not verify. */
export class LedgerCorruptError extends ConclaveError {}
/** A record the ledger already anchors: the same signed record may not be anchored twice. */
export class DuplicateRecordError extends ConclaveError {}
/** A block id the ledger does not hold. */
export class BlockNotFoundError extends ConclaveError {}
/** Weights or deltas with NaN/Infinity values, unknown tensors or wrong shapes. */
export class InvalidWeightsError extends ConclaveError {}
/** My local training gave an update or loss with NaN/Infinity (bad features, a diverging learning rate): I do not propose it. */
export class NonFiniteUpdateError extends ConclaveError {}
/** A dataset file with wrong columns, bad tags or no examples. */
export class DatasetError extends ConclaveError {}
/** Training, judging or scoring on questions none of which has a teacher's answer yet. */
export class UntaughtError extends ConclaveError {}
/** A file Conclave wrote earlier (an answer cache index, an agent's memory) that no longer parses. */
export class DamagedFileError extends ConclaveError {}
/** A model the configuration names that is not there: a missing GGUF file, a model an Ollama server does not have. */
export class ModelNotFoundError extends ConclaveError {}
/** A keystore that is missing, unreadable or too permissive. */
export class KeystoreError extends ConclaveError {}
/** An anchored decision or checkpoint that differs from what the records imply. */
export class DerivationMismatchError extends ConclaveError {}

/** A run directory whose audit fails: there is no model it vouches for, so none is exported. */
export class AuditFailedError extends ConclaveError {}

/** A round whose window passed with no checkpoint from its recorder that this process accepts. */
export class NoCheckpointError extends ConclaveError {}

/** A teacher cannot answer (no such question in its cache, a server or model missing). */
export class TeacherError extends ConclaveError {}

/** A query would spend more of an agent's teacher budget than is left. */
export class BudgetExceededError extends ConclaveError {}

/** A ledger that holds no block where a federation's history was expected. */
export class EmptyLedgerError extends ConclaveError {}
/** A ledger whose history has no charter to start from. */
export class MissingCharterError extends ConclaveError {}
/** A file a run directory's manifest lists (or the manifest or head itself) that is not there. */
export class MissingFileError extends ConclaveError {}
/** A file or folder in a run directory that its manifest does not list. */
export class StrayFileError extends ConclaveError {}
/** A file whose size or sha-256 differs from what the run directory's manifest says. */
export class AlteredFileError extends ConclaveError {}
/** A ledger whose head (tips, blocks, model, manifest) is not the head it is checked against. */
export class HeadMismatchError extends ConclaveError {}
/** Two copies of one ledger where one holds only a strict prefix of the other. */
export class LedgerBehindError extends ConclaveError {}
/** Two copies of one ledger that part ways: neither is a prefix of the other. */
export class LedgerDivergedError extends ConclaveError {}
/** A tool call by an agent a researcher paused (`!pause`): it takes no action until `!resume`. */
export class AgentPausedError extends ConclaveError {}
/** An action asked of a member loaded read-only (`conclave chat` over a run directory): it may read the record, never add to it. */
export class ReadOnlyMemberError extends ConclaveError {}
/** A training worker thread that died (crashed, ran out of memory) while it held a job; the pool starts another in its place. */
export class TrainWorkerCrashedError extends ConclaveError {}
/** A job given to a training pool that was closed, or still waiting or running when it closed. */
export class TrainPoolClosedError extends ConclaveError {}
/** A training worker on another TF.js backend than the thread that asked: its weights would not be the ones training there gives. */
export class TrainBackendMismatchError extends ConclaveError {}
/** A message across the training pool's thread boundary (a job, or a worker's reply) that does not parse. */
export class BadPoolMessageError extends ConclaveError {}
