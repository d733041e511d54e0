import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { MAX_MEMBERS } from './limits.ts'
import { QuorumRule } from './quorum.ts'
import { AcceptanceTerms, Compression, Judgement, VoteMeasurement } from './terms.ts'

/** did:key with a multibase base58btc key (Ed25519 keys start with z6Mk). */
export const Did = z.string().regex(/^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$/, 'expected a did:key DID')
export type Did = z.infer<typeof Did>

/**
 * A CIDv1 in base32, as Helia and kubo print it, and one that parses: a string of the right
 * letters that names no CID would fail every store's read, and was taken for damage by the
 * audit (found red-teaming: one member's proposal failed every audit of its run).
 */
export const Cid = z.string().regex(/^b[a-z2-7]{50,120}$/, 'expected a base32 CIDv1').refine(parses, 'expected a base32 CIDv1')
export type Cid = z.infer<typeof Cid>

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha-256')

/** The ledger's name for an anchored record: a block hash on the tangle, a digest on IOTA. */
export const BlockId = z.string().regex(/^[0-9a-zA-Z_:-]{8,128}$/, 'expected a block id')
export type BlockId = z.infer<typeof BlockId>

const FederationId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a lowercase federation id')
const Round = z.number().int().nonnegative()
const FiniteNumber = z.number().refine(Number.isFinite, 'expected a finite number')

/** A person's Matrix account, e.g. @alice:example.org. */
export const MatrixUserId = z.string().max(255).regex(/^@[^:\s]+:\S+$/, 'expected a Matrix user id like @name:server')

/** The server name of a Matrix id: all after its first colon (`@name:host:8448` → `host:8448`; a localpart holds no colon). */
export function serverOf (id: string): string {
  return id.split(':').slice(1).join(':')
}
/** A Matrix event id (room versions 4 and later: `$` and url-safe base64). */
export const MatrixEventId = z.string().regex(/^\$[A-Za-z0-9+/=_.:-]{1,254}$/, 'expected a Matrix event id')

/**
 * What researchers' 👍/👎 on a proposal do: `advisory` votes are on the ledger beside the
 * members' and count for nothing; `counted` ones count toward the quorum like a member's.
 */
export const HumanVotes = z.enum(['advisory', 'counted'])
export type HumanVotes = z.infer<typeof HumanVotes>

/** A model's content: its CID and the sha-256 of its safetensors bytes. */
export const ModelRef = z.object({
  cid: Cid,
  sha256: Sha256Hex
}).strict()
export type ModelRef = z.infer<typeof ModelRef>

export const Metric = z.object({
  name: z.string().min(1).max(32),
  value: FiniteNumber
}).strict()

/** How accepted deltas merge; voting decides which, the rule decides how. */
export const AggregationRule = z.enum(['fedavg', 'fedavg-share', 'fedavg-sparse', 'median', 'trimmed-mean', 'krum', 'multi-krum', 'trust-weighted'])
export type AggregationRule = z.infer<typeof AggregationRule>

/** Largest committee: a decision lists its committee and votes, 11.4 KiB signed at 64 (under MAX_RECORD_BYTES), too large at 96. */
export const MAX_COMMITTEE = 64

/**
 * The genesis of a federation: who is a member, how decisions are made, and the model
 * everyone starts from. The audit trusts the first charter on the ledger as its root.
 */
export const Charter = z.object({
  type: z.literal('charter'),
  federation: FederationId,
  round: z.literal(0),
  members: z.array(Did).min(1).max(MAX_MEMBERS)
    .refine(m => new Set(m).size === m.length, 'members must be unique'),
  quorum: QuorumRule,
  windowSeconds: z.number().int().positive().max(86_400),
  aggregation: AggregationRule,
  /** Server momentum β: each round's step adds β times the previous round's (FedAvgM). @default 0 */
  momentum: z.number().min(0).lt(1).default(0),
  task: z.string().min(1).max(64),
  initial: ModelRef,
  /**
   * What each member (in `members` order) declared at enrolment it trains on: a proposal may
   * claim at most its proposer's figure, so no member can buy the merge with a claimed
   * sample count. Absent: proposals' counts are not bounded (charters before it existed).
   */
  samples: z.array(z.number().int().positive()).optional(),
  /**
   * How members decide on an update: every member follows these, whatever its own config
   * says, and each vote must be what they decide from the measurement it signs. Absent
   * (charters before it existed): each member judged by its own config, and the audit
   * cannot re-decide the votes.
   */
  acceptance: AcceptanceTerms.optional(),
  /** The researchers whose reactions on a proposal members anchor as human votes. Absent: none. */
  researchers: z.array(MatrixUserId).max(256).optional(),
  /** Whether those human votes count toward the quorum. Absent: advisory. */
  humanVotes: HumanVotes.optional(),
  /**
   * How many members must anchor a reaction before it is its researcher's vote: the researcher
   * signs nothing, so one member's word would do, and a forged 👍 could buy a merge. Absent: one.
   */
  humanWitnesses: z.number().int().positive().max(MAX_MEMBERS).optional(),
  /**
   * k: each proposal is judged by k of its proposer's peers, drawn from the round's base
   * model and the proposer (src/federation/committee.ts), and the quorum counts within them.
   * Absent: every peer judges every proposal.
   */
  committee: z.number().int().positive().max(MAX_COMMITTEE).optional(),
  /**
   * How the committee draw names members: `place`, by their place in `members`. Absent: by
   * their DIDs, as charters were drawn before it (their runs audit and resume as they ran).
   */
  committeeDraw: z.literal('place').optional(),
  /**
   * How each proposal's Δw is encoded (src/ml/compression.ts): every peer and the audit
   * decode it by this, and refuse bytes that do not follow it. Absent: none (F32).
   */
  compression: Compression.optional()
}).strict()
  .refine(c => c.samples === undefined || c.samples.length === c.members.length, { message: 'samples must give one count per member', path: ['samples'] })
  .refine(c => c.committee === undefined || c.committee < c.members.length, { message: 'a committee holds at most the proposer\'s peers: fewer than the members', path: ['committee'] })
  .refine(c => c.committeeDraw === undefined || c.committee !== undefined, { message: 'a committee draw needs a committee', path: ['committeeDraw'] })
  .refine(c => c.humanWitnesses === undefined || c.humanWitnesses <= c.members.length, { message: 'a reaction has at most as many witnesses as there are members', path: ['humanWitnesses'] })
export type Charter = z.infer<typeof Charter>

/** "Here is my update Δw = w_t − w_{t−1}, trained from `base`." */
export const Proposal = z.object({
  type: z.literal('proposal'),
  federation: FederationId,
  round: Round.min(1),
  base: Cid,
  delta: ModelRef,
  numSamples: z.number().int().positive(),
  metric: Metric.optional()
}).strict()
export type Proposal = z.infer<typeof Proposal>

/** What took a vote's step: a model's spec (`ollama:qwen3`, `gguf:<file name>`) or `policy` (the protocol policy, the fallback). */
export const DecidedBy = z.string().min(1).max(200).regex(/^[\w.:/@+-]+$/, 'expected a model spec or policy: letters, digits and . _ : / @ + - only')

/** `decidedBy` of a step the protocol policy took (as an agent's fallback or its only model, or the autopilot). */
export const POLICY = 'policy'

/** A peer's judgement of a proposal, with its reason, so the ledger shows why. */
export const Vote = z.object({
  type: z.literal('vote'),
  federation: FederationId,
  round: Round.min(1),
  proposal: BlockId,
  accept: z.boolean(),
  score: FiniteNumber,
  rationale: z.string().max(2000),
  /** Who took the step, as the voter says: `policy` is checked (it follows the rule), a model's name cannot be. Absent: a vote from before it was recorded. */
  decidedBy: DecidedBy.optional(),
  /** The judgement mode the voter declared: every peer refuses one other than the charter's. Absent: before modes existed. */
  judgement: Judgement.optional(),
  /** What the voter measured and decided from: required under a charter that states its acceptance terms. */
  measurement: VoteMeasurement.optional()
}).strict()
export type Vote = z.infer<typeof Vote>

/**
 * A researcher's 👍/👎 reaction on a proposal's notice, anchored by a member that saw it in
 * the room: the researcher signs nothing, so the record names the reaction's Matrix event,
 * which anyone in the room can fetch and check (sender, key, the proposal it reacts to).
 */
export const HumanVote = z.object({
  type: z.literal('human-vote'),
  federation: FederationId,
  round: Round.min(1),
  proposal: BlockId,
  accept: z.boolean(),
  /** Who reacted: their Matrix account, as the homeserver named the reaction's sender. */
  researcher: MatrixUserId,
  /** The reaction's Matrix event id. */
  event: MatrixEventId
}).strict()
export type HumanVote = z.infer<typeof HumanVote>

/** The tally of one proposal, as derived from the anchored votes. */
export const Decision = z.object({
  type: z.literal('decision'),
  federation: FederationId,
  round: Round.min(1),
  proposal: BlockId,
  proposer: Did,
  accepted: z.boolean(),
  accepts: z.number().int().nonnegative(),
  rejects: z.number().int().nonnegative(),
  required: z.number().int().positive(),
  votes: z.array(BlockId),
  /** The members drawn to judge it, in draw order, where the charter sets a committee. */
  committee: z.array(Did).optional()
}).strict()
export type Decision = z.infer<typeof Decision>

/** The global model after a round's accepted updates were merged. */
export const Checkpoint = z.object({
  type: z.literal('checkpoint'),
  federation: FederationId,
  round: Round.min(1),
  parent: Cid,
  model: ModelRef,
  merged: z.array(BlockId)
}).strict()
export type Checkpoint = z.infer<typeof Checkpoint>

export const Record = z.discriminatedUnion('type', [Charter, Proposal, Vote, HumanVote, Decision, Checkpoint])
export type Record = z.infer<typeof Record>
export type RecordType = Record['type']

/** The JWT claims that wrap every record: issuer, times and a one-time nonce (`jti`). */
export const Claims = z.object({
  iss: Did,
  iat: z.number().int().positive(),
  exp: z.number().int().positive(),
  jti: z.string().regex(/^[0-9a-f]{32}$/, 'expected a 128-bit hex nonce')
})

/** A record whose signature, issuer and times were checked. */
export interface SignedRecord<R extends Record = Record> {
  jwt: string
  issuer: Did
  issuedAt: number
  expiresAt: number
  nonce: string
  record: R
}

/** Upper bound on one record's JWT, so a peer cannot make others parse megabytes. */
export const MAX_RECORD_BYTES = 16 * 1024

function parses (text: string): boolean {
  try {
    return CID.parse(text).version === 1
  } catch {
    return false
  }
}
