import { NoCharterError, NoDraftError, type ConclaveError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { AbortOptions, ProgressOptions } from '../core/options.ts'
import type { BlockId, Did, ModelRef, RecordType } from '../core/records.ts'
import { BoundedMap } from '../core/bounded-map.ts'
import type { SerialQueue } from '../core/serial-queue.ts'
import type { Identity } from '../identity/index.ts'
import type { Ledger } from '../ledger/index.ts'
import { NO_COMPRESSION } from '../ml/compression.ts'
import type { ClassScore, Shard, Task } from '../ml/task.ts'
import type { Weights } from '../ml/weights.ts'
import type { ContentStore } from '../storage/index.ts'
import type { CachedTeacher } from '../teachers/cache.ts'
import type { Bus } from '../transport/index.ts'
import type { Verdict } from './acceptance.ts'
import type { Attack, Conduct } from './attacks.ts'
import type { GlobalModel } from './merge.ts'
import type { PhaseTimer } from './phases.ts'
import { Residuals } from './residuals.ts'
import type { ModelScore } from './steps/score.ts'
import type { SharedWork } from './shared-work.ts'
import type { FederationState, ProposalEntry } from './state.ts'
import type { AcceptanceTerms, Compression, Geometry, Measured } from '../core/terms.ts'

/** What a participant is made of: its services, data, settings and, for experiments, its attack. */
export interface ParticipantInit {
  /** Human-facing name for logs, chat and reports, e.g. `agent-2`. */
  name: string
  identity: Identity
  store: ContentStore
  ledger: Ledger
  bus: Bus
  /** The federation's room on the bus. */
  room: string
  task: Task
  /** This participant's own data: it trains on `train` and judges peers on `val`. */
  shard: Shard
  /**
   * Where a task learned by distillation (qa) gets its targets: this participant's own
   * teacher, cached and budgeted. Its questions have no targets until it distils.
   */
  teacher?: { cache: CachedTeacher, /** Most tokens one answer may cost. */ maxTokens: number }
  /** Base seed of this participant's training; each round derives its own from it. */
  seed: number
  /** Where this participant keeps its own state (what its compressed updates have not sent yet). @default memory only */
  dir?: string
  /**
   * When I accept a peer's update, from what I measured of it: the terms I found a federation
   * with. A charter's own terms override them; I follow these only under a charter that
   * states none (charters before it did). @default the tolerance rule with the task's judge's
   * tolerances, scoring the full Δw, no geometry bounds
   */
  terms?: AcceptanceTerms
  /** Unix-seconds clock, for record times. @default the system clock */
  clock?: () => number
  /** Where this participant's work runs, one task at a time. @default a queue of its own */
  queue?: SerialQueue
  /** Counts the participant's time per phase; one timer for all who share a queue counts each instant once. @default a timer of its own */
  timer?: PhaseTimer
  /** Work done once for every participant of this process (a simulation's); absent: all my own. */
  shared?: SharedWork
  /**
   * Whether I fetch a peer's Δw off my queue before judging it (steps/fetch-ahead.ts): a peer
   * on another machine may withhold it. A simulation's members put every Δw in the one
   * store they share and judge each in the turn of its record, as their committed figures were
   * measured. @default true
   */
  fetchAhead?: boolean
  /**
   * Pin on my store what my copy of the run needs to be audited later: the charter's model,
   * every Δw I fetch, each checkpoint's model. Off for a run replayed read-only (conclave
   * chat), which writes nothing. @default true
   */
  keepContent?: boolean
  /** Makes this participant hostile, for robustness experiments. @default honest */
  attack?: Attack
  /** Fellow colluders (1-based positions in the charter's members), whose updates a colluding member accepts while it rejects everyone else's. */
  allies?: readonly number[]
  /**
   * Judge and vote on every peer proposal as it arrives (the protocol autopilot). An
   * agent turns this off and decides itself, through evaluate() and vote(). @default true
   */
  autoVote?: boolean
  logger?: Logger
}

/** A trained update held locally until it is published and proposed. */
export interface Draft {
  round: number
  delta: Weights
  numSamples: number
  loss: number
  /** Set once the Δw is in the content store. */
  ref?: ModelRef
}

/** What I measured of a peer's update on my validation data, and what the acceptance rule says of it. */
export interface Evaluation {
  proposal: BlockId
  proposer: Did
  round: number
  before: number
  after: number
  /** after − before, in the task's metric. */
  score: number
  /** Whether the update passes the federation's acceptance rule (never when it is unusable). */
  passes: boolean
  /** How the update lies against my own update of the round and every earlier one I have seen. */
  geometry?: Geometry
  /** The measurement in words, for the vote's rationale. */
  summary: string
  /** What the acceptance terms decided on, as my vote signs it (geometry included), and their verdict. Absent when unusable. */
  measurement?: Measured
  verdict?: Verdict
  /** Set when the update cannot be used at all (bad content, wrong shape…): the only vote is reject. */
  unusable?: string
}

export interface ParticipantEvents {
  'conclave:record:applied': [{ block: BlockId, type: RecordType, issuer: Did }]
  'conclave:record:rejected': [{ block: BlockId, error: ConclaveError }]
  'conclave:evaluated': [Evaluation]
  'conclave:vote:cast': [{ proposal: BlockId, accept: boolean, score: number, rationale: string }]
  'conclave:checkpoint': [{ round: number, model: ModelRef }]
  /** A human vote the room does not back: no such reaction, or another sender, key or proposal. */
  'conclave:human-vote:unconfirmed': [{ block: BlockId, researcher: string, event: string, reason: string }]
}

/** A step's progress: one of the participant's events, as `{ type, detail }`. */
export type StepProgress = { [K in keyof ParticipantEvents]: { type: K, detail: ParticipantEvents[K][0] } }[keyof ParticipantEvents]

/** Every step takes these last. */
export interface StepOptions extends AbortOptions, ProgressOptions<StepProgress> {}

/** A global model as I hold it, with what I measured of it on my validation examples: its score, its mean entropy, and its mean entropy with each update of its round applied at its share and how far that moves its predictions (by proposal). */
export type HeldModel = GlobalModel & { ref: ModelRef, judged?: number, unsure?: number, unsureWith?: Map<BlockId, number>, movedBy?: Map<BlockId, number> }

/** A count sketch of an update (ml/similarity.ts) with its Σ v² (sketchSquares), taken once: each cosine with it is one pass. */
export interface HeldSketch {
  readonly round: number
  readonly block: BlockId
  readonly sketch: Float32Array
  readonly squares: number
  /** Merged by its round's checkpoint: it may explain a later update's direction. */
  merged?: boolean
}

/** A proposal replayed after a restart whose sketch I held before it, taken once the replay is done if its window still holds it (steps/geometry.ts recallSketches). */
export interface RecalledSketch {
  readonly round: number
  readonly block: BlockId
  readonly entry: ProposalEntry
  merged?: boolean
}

/** What one member holds between steps: its own, changed only by its steps. */
export interface Holdings {
  /** My data; distilling gives its questions their teacher's answers. */
  shard: Shard
  draft?: Draft
  global?: HeldModel
  /** The charter's initial model, kept while the acceptance rule needs its score. */
  initial?: { weights: Weights, judged?: number }
  /** True while catching up from the ledger: replayed records cause no new ones. */
  replaying: boolean
  /** The last position of my ledger I handled (applied or refused): blocks are handled in the ledger's order, whatever order the bus brings them in. */
  handled: number
  /** Δw of proposals I made or fetched, by proposal block. */
  readonly deltas: Map<BlockId, Weights>
  readonly evaluations: Map<BlockId, Evaluation>
  /** Proposals I voted on, before my vote comes back from the bus. */
  readonly cast: Set<BlockId>
  /** Researchers' reactions I anchored as human votes (`proposal researcher`), before they come back from the bus. */
  readonly reacted: Set<string>
  /** The recorder's own merge, what it read (mergeInputs) and whether its checkpoint is anchored: checking it does not merge twice, nor is it anchored twice. */
  readonly merged: Map<number, { model: GlobalModel, inputs: string, anchored: boolean }>
  /** Questions my teacher could not answer: not asked again. */
  readonly unanswerable: Set<string>
  /** My own trained update per round, the reference I measure peers' updates against; dropped once its round is merged. */
  readonly own: Map<number, Weights>
  /** My judge's score of the global model (by its CID) with my own update of a round applied, the bar a must-improve rule sets peers. */
  readonly referenceScores: Map<number, { model: string, score: number, unsure?: number, moved?: number }>
  /** Per round, the updates I combine to measure each one's marginal effect (by global model and number of proposals seen), and my score of their combination. */
  readonly combinations: Map<number, { model: string, proposals: number, updates: Map<BlockId, Weights>, combined?: { score: number, classes?: ClassScore[] } }>
  /** An update trained for a round before I drafted it (as my reference when judging a peer): my draft takes it rather than train twice. */
  readonly prepared: Map<number, Draft>
  /** An update for a round still training, started before my turn (trainAhead): my draft and my reference take it when it is done. */
  readonly training: Map<number, Promise<Draft>>
  /** What my compressed updates have not sent yet, owed to my next one (error feedback). */
  readonly residuals: Residuals
  /** My judge's score of a model, by its sha256: asked for the trend again and again (anyone in the room may ask), each round's model is scored once. */
  readonly scores: BoundedMap<string, ModelScore>
  /** Sketches of the updates I judged or proposed in the rounds my votes measure against (steps/geometry.ts): a re-sent one is nearly parallel to its original. */
  readonly sketches: HeldSketch[]
  /** The sketches a replay owes me, not fetched yet: its later checkpoints may let them go. */
  readonly recalled: RecalledSketch[]
  /** The last of the peers' Δw fetched ahead of judging (steps/fetch-ahead.ts): settles once it and every one before it is fetched or given up. */
  ahead: Promise<void>
  /** The Δw being fetched ahead of judging now, each settling (never rejecting) once held or given up. */
  readonly fetching: Map<BlockId, Promise<void>>
  /** Proposals whose Δw my store gave me in no try ahead of judging: neither judged by my autopilot nor combined, until their round is merged. */
  readonly unfetched: Set<BlockId>
}

/** Global models whose scores a member keeps: more than a long run's rounds, a few bytes each. */
const SCORES_KEPT = 4096

/** What a member holds when it starts: its data, and what its compressed updates still owe (kept in `dir`). */
export function freshHoldings (shard: Shard, dir?: string): Holdings {
  return { shard, replaying: false, handled: -1, deltas: new Map(), evaluations: new Map(), cast: new Set(), reacted: new Set(), merged: new Map(), unanswerable: new Set(), own: new Map(), referenceScores: new Map(), combinations: new Map(), prepared: new Map(), training: new Map(), residuals: new Residuals(dir), scores: new BoundedMap(SCORES_KEPT), sketches: [], recalled: [], ahead: Promise.resolve(), fetching: new Map(), unfetched: new Set() }
}

/**
 * What the protocol steps share: one member's services, settings, its view of the
 * federation and what it holds. Each step takes only the part it reads (a `Pick`).
 */
export interface StepContext {
  readonly name: string
  readonly identity: Identity
  readonly store: ContentStore
  readonly ledger: Ledger
  readonly bus: Bus
  /** The federation's room on the bus. */
  readonly room: string
  readonly task: Task
  /** Where a task learned by distillation gets its targets (absent: no teacher). */
  readonly teacher?: { cache: CachedTeacher, maxTokens: number }
  /** My own acceptance terms, followed only under a charter that states none (see termsFor). */
  readonly terms: AcceptanceTerms
  /** How I make updates: honestly, or as my attack says. */
  readonly conduct: Conduct
  /** For a colluding member: the allies whose updates it accepts (1-based member positions). */
  readonly collusion?: readonly number[]
  /** Judge, vote and distil by myself (the autopilot), rather than wait for an agent to. */
  readonly autoVote: boolean
  /** Pin what my copy of the run needs (ParticipantInit.keepContent). */
  readonly keepContent: boolean
  readonly state: FederationState
  readonly timer: PhaseTimer
  /** Work shared with the other participants of this process, where there are any. */
  readonly shared?: SharedWork
  readonly logger: Logger
  /** Unix seconds, for record times. */
  now(): number
  readonly held: Holdings
}

/** The global model I hold; there is none before I applied the charter. */
export function requireGlobal ({ name, held }: Pick<StepContext, 'name' | 'held'>): HeldModel {
  if (held.global === undefined) throw new NoCharterError(`${name} has not seen the federation's charter yet`)
  return held.global
}

/** The federation my records belong to, from its charter. */
export function federationOf ({ name, state }: Pick<StepContext, 'name' | 'state'>): string {
  if (state.charter === undefined) throw new NoCharterError(`${name} has not seen the federation's charter yet`)
  return state.charter.record.federation
}

export function requireDraft ({ name, held }: Pick<StepContext, 'name' | 'held'>): Draft {
  if (held.draft === undefined) throw new NoDraftError(`${name} has no trained draft: train first`)
  return held.draft
}

/** How the charter has members' updates encoded: none before there is a charter, or where it states none. */
export function compressionOf ({ state }: Pick<StepContext, 'state'>): Compression {
  return state.charter?.record.compression ?? NO_COMPRESSION
}

/** The acceptance terms I judge by: the charter's, or my own under a charter that states none. */
export function termsFor ({ state, terms }: Pick<StepContext, 'state' | 'terms'>): AcceptanceTerms {
  return state.charter?.record.acceptance ?? terms
}
