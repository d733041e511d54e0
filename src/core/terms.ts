import { z } from 'zod'
import { MAX_MEMBERS } from './limits.ts'

/*
 * The terms a charter fixes for judging and shipping updates, and what a vote measures under
 * them: schemas only, as records hold them. The rules that decide by them live in
 * federation/acceptance*.ts, the codecs in ml/compression.ts.
 */

/** Most classes a vote may measure one by one (classify's corpus has 23; a record holds 16 KiB). */
export const MAX_CLASSES = 64

/** Most other updates of a round a vote measures: one per member. */
const MAX_ROUND_UPDATES = MAX_MEMBERS

/**
 * What a peer measured of one update on its own validation examples, in its judge's units:
 * everything an acceptance rule may look at, so that whoever holds the numbers (the audit,
 * once votes sign them) reaches the same verdict. A rule that needs more adds a field here.
 */
export const Measurement = z.object({
  /** The judge's score of the global model. */
  before: z.number(),
  /** Its score of the global model with the update applied (in full, or as one member's share). */
  after: z.number(),
  /** Its score of the charter's initial model; measured only for a rule that needs it. */
  initial: z.number().optional(),
  /**
   * Its score of the global model with its own update of the round applied at the same
   * scale (trained from the same global model on its own data, as FLTrust's server trains on
   * its root set); absent when it has none (it cannot train yet, or the round has passed).
   */
  reference: z.number().optional(),
  /**
   * For the marginal rule, measured once the round's proposals are in: its score of the
   * global model with the round's combined update applied (every update of the round that
   * I can use and my geometry bounds admit, my own included, this one too, each at its share)…
   */
  combined: z.number().optional(),
  /** …and of the same combination without this update. */
  without: z.number().optional(),
  /**
   * For the classwise rule: `combined` and `without` class by class, each label of my
   * validation examples with their number and its mean score under either combination.
   */
  classes: z.array(z.object({
    label: z.number().int().min(0),
    n: z.number().int().positive(),
    combined: z.number(),
    without: z.number()
  }).strict()).max(MAX_CLASSES).optional(),
  /**
   * For the `minSharpening` term: the mean entropy of the model's predictions over my
   * validation examples (how unsure it is) with the global model, with this update applied,
   * and with my own update of the round applied at the same scale (absent when I have none);
   * under `sharpeningYardstick: round`, also with each other update of the round I combine
   * (`combined`'s, this one and mine excepted), at the same scale.
   */
  entropy: z.object({
    before: z.number(),
    after: z.number(),
    reference: z.number().optional(),
    round: z.array(z.number()).max(MAX_ROUND_UPDATES).optional()
  }).strict().optional(),
  /**
   * For the `minMovement` term: how far this update, applied at its share, moves the model's
   * predictions over my validation examples (the mean KL divergence from the global model's),
   * how far my own update of the round does (absent when I have none), and how far each other
   * update of the round I combine does (`combined`'s, this one and mine excepted).
   */
  movement: z.object({
    after: z.number().min(0),
    reference: z.number().min(0).optional(),
    round: z.array(z.number().min(0)).max(MAX_ROUND_UPDATES)
  }).strict().optional()
}).strict()
export type Measurement = z.infer<typeof Measurement>

/** What a rule may ask to be measured beyond `before` and `after` (each costs a pass of the judge). */
export type Extra = Exclude<keyof Measurement, 'before' | 'after'>

export const AcceptanceRuleName = z.enum(['tolerance', 'improve', 'marginal', 'classwise', 'standing', 'probation'])
export type AcceptanceRuleName = z.infer<typeof AcceptanceRuleName>

/** The acceptance settings only some rules read (federation/acceptance.ts's `acceptanceRule`), and those rules. */
export const RULE_SETTINGS = {
  minGain: ['improve', 'marginal', 'classwise', 'standing', 'probation'],
  classRatio: ['classwise', 'standing', 'probation'],
  probationGain: ['probation'],
  gainingVouchers: ['probation'],
  badOnProbation: ['probation'],
  probationOnce: ['probation'],
  minSharpening: ['probation'],
  sharpeningYardstick: ['probation'],
  minMovement: ['probation'],
  strikes: ['standing', 'probation']
} as const satisfies Record<string, readonly AcceptanceRuleName[]>

/** Why naming `setting` under `rule` is a mistake (the rule does not read it); undefined where the rule reads it. */
export function unreadSetting (setting: keyof typeof RULE_SETTINGS, rule: AcceptanceRuleName): string | undefined {
  const rules: readonly AcceptanceRuleName[] = RULE_SETTINGS[setting]
  if (rules.includes(rule)) return undefined
  return `${setting} applies to the ${rules.length > 1 ? `${rules.slice(0, -1).join(', ')} and ${rules.at(-1) as string} rules` : `${rules[0] as string} rule`}, not to ${rule}`
}

/**
 * How a peer's update lies against the voter's own update of the same round (trained from
 * the same global model on the voter's own data, as FLTrust's server does on its root set)
 * and against every earlier update the voter has seen.
 */
export const Geometry = z.object({
  /** ‖Δ_peer‖ / ‖Δ_mine‖; absent when I have no update of my own for the round. */
  normRatio: z.number().nonnegative().optional(),
  /** cos(Δ_peer, Δ_mine); absent likewise. */
  cosine: z.number().min(-1).max(1).optional(),
  /** The largest cosine with any update seen before it, of this round or one of the 16 before (SKETCH_ROUNDS; −1: none): a re-sent update is ≈ 1. */
  earlierCosine: z.number().min(-1).max(1),
  /** The largest cosine with an update the federation merged in one of the 16 rounds before (−1: none). */
  historyCosine: z.number().min(-1).max(1),
  /** The cosine with the mean of the round's updates anchored before it; absent when none was. A copy of the round's mean hiding something is ≈ 1, where no single earlier update is. */
  roundCosine: z.number().min(-1).max(1).optional()
}).strict()
export type Geometry = z.infer<typeof Geometry>

/** Bounds on an update's geometry, on top of the judge's score (docs/results/robustness.md says how they were chosen). */
export const Robustness = z.object({
  /** Largest ‖Δ_peer‖ / ‖Δ_mine‖ accepted: a scaled or noise update is many times an honest one. */
  maxNormRatio: z.number().positive().default(3),
  /**
   * An update must be explained: along my own update by at least this cosine, or along an
   * update the federation merged in an earlier round by `minHistoryCosine`. Honest updates
   * are (cosine ≥ 0.07 with a peer's in round 1, ≥ 0.72 with the proposer's previous one
   * after it, on classify's dev split); noise is not (≤ 0.02 with either).
   */
  minCosine: z.number().min(-1).max(1).default(0.03),
  minHistoryCosine: z.number().min(-1).max(1).default(0.3),
  /** Largest cosine with an earlier update accepted: above it the update is a re-sent one. */
  maxEarlierCosine: z.number().min(-1).max(1).default(0.99),
  /**
   * Largest cosine with the mean of the round's earlier updates accepted: above it the update
   * is mostly a copy of what others already sent, a cover for whatever it carries besides.
   * Absent: not asked. How close an honest update lies to that mean grows with how many came
   * before it (robustness-selection.md), so a bound is chosen for a federation's size.
   */
  maxRoundCosine: z.number().min(-1).max(1).optional()
}).strict()
export type Robustness = z.infer<typeof Robustness>

/**
 * Who may decide a vote's accept: `rule` (the acceptance rule decides; the voter only
 * explains), `model` (the voter's model decides; the protocol alone binds it) or `guarded`
 * (the model decides, but cannot accept what the rule rejects).
 */
export const Judgement = z.enum(['rule', 'model', 'guarded'])
export type Judgement = z.infer<typeof Judgement>

/**
 * How the federation decides on an update, written in its charter: every member judges by
 * these terms whatever its own config says, and anyone holding a vote (a peer, the audit)
 * can decide it again from the measurement it carries. A later setting for who decides
 * (the rule, an agent's model, or a model the rule guards) sits beside these.
 */
export const AcceptanceTerms = z.object({
  /** The rule a measurement is decided by (federation/acceptance.ts). */
  rule: AcceptanceRuleName,
  /** How far an update may lower a voter's judge's score. */
  tolerance: z.number().min(0).max(1),
  /** On top: the share of what the federation has taught the voter that an update may undo. */
  relativeTolerance: z.number().min(0).max(1),
  /** For the improve rule: the share of what a voter's own update gains it that an update must gain it too; for marginal, the share of what the round's combined update gains it. */
  minGain: z.number().min(-1).max(1).optional(),
  /** For the classwise rule (and the standing rule's strict side): how many times what an update costs the classes it hurts it must bring the classes it helps. */
  classRatio: z.number().min(1).max(100).optional(),
  /** For the probation rule: the share of what a voter's own update gains it that a newcomer's update must gain it too. */
  probationGain: z.number().min(0).max(1).optional(),
  /** The votes of a member the federation rejected in an earlier round (standing `bad`) do not count, nor does it in the quorum. Absent: every vote counts. */
  excludeRejected: z.literal(true).optional(),
  /** For the probation rule: only a voter whose own update of the round raises its score may accept a newcomer's update. Absent: any voter may. */
  gainingVouchers: z.literal(true).optional(),
  /** For the probation rule: a member in bad standing must pass the newcomer's test too. Absent: the classwise rule alone judges it. */
  badOnProbation: z.literal(true).optional(),
  /** For the probation rule with strikes: a member refused on probation, short of its strikes and never merged, is in good standing. Absent: on probation again. */
  probationOnce: z.literal(true).optional(),
  /** For the probation rule: the share of what a voter's own update sharpens its predictions that a newcomer's update must sharpen them too. Absent: not asked. */
  minSharpening: z.number().min(0).max(1).optional(),
  /** For minSharpening: measured against the round's median update as the voter measures it (`round`). Absent: against the voter's own update. */
  sharpeningYardstick: z.literal('round').optional(),
  /** For the probation rule: the share of the round's median movement of a voter's predictions that a newcomer's update must move them too. Absent: not asked. */
  minMovement: z.number().gt(0).max(1).optional(),
  /** For the standing and probation rules: how many rejected updates of earlier rounds put a member in bad standing. Absent: one. */
  strikes: z.number().int().min(2).max(100).optional(),
  /** What is scored: global + Δw (`full`) or global + Δw / N (`share`). */
  scale: z.enum(['full', 'share']),
  /** Bounds on an update's geometry against the voter's own update; absent: none. */
  robustness: Robustness.optional(),
  /** Who decides a vote's accept; every peer and the audit hold each vote to it. Absent: the rule. */
  judgement: Judgement.optional()
}).strict().superRefine((terms, ctx) => {
  // A charter naming a term its rule does not read was not written by termsOf: refused, not ignored.
  for (const setting of Object.keys(RULE_SETTINGS) as (keyof typeof RULE_SETTINGS)[]) {
    const unread = terms[setting] === undefined ? undefined : unreadSetting(setting, terms.rule)
    if (unread !== undefined) ctx.addIssue({ code: 'custom', path: [setting], message: unread })
  }
  // Nor does it write probationOnce without the strikes that leave a refused member short of bad standing.
  if (terms.probationOnce === true && terms.strikes === undefined) ctx.addIssue({ code: 'custom', path: ['probationOnce'], message: 'probationOnce needs strikes of 2 or more' })
})
export type AcceptanceTerms = z.infer<typeof AcceptanceTerms>

/**
 * Largest magnitude of a value a vote may sign. A judge's score beyond it (or NaN) says
 * only that the update is unusable; it never passes as a number anyone must compute with.
 */
export const MEASURED_LIMIT = 1e9

const withinLimit = (value: unknown): boolean =>
  typeof value === 'number' ? Math.abs(value) <= MEASURED_LIMIT : typeof value !== 'object' || value === null || Object.values(value).every(withinLimit)

/**
 * What a voter measured of an update and signs with its vote: its judge's scores (every
 * field of Measurement, whatever rules it grows for) and, where the charter bounds it, the
 * update's geometry. Or, for an update it could not use, why.
 */
export const VoteMeasurement = z.union([
  Measurement.extend({ geometry: Geometry.optional() })
    .refine(withinLimit, `a measured value beyond ±${MEASURED_LIMIT}`),
  z.object({ unusable: z.string().regex(/^ERR_[A-Z0-9_]{1,64}$/, 'expected an error code') }).strict()
])
export type VoteMeasurement = z.infer<typeof VoteMeasurement>
export type Measured = Exclude<VoteMeasurement, { unusable: string }>

/**
 * How a member's update Δw travels, as the charter fixes it: `none` (F32 safetensors, the
 * bytes runs always wrote), `int8` (each tensor as int8 with one symmetric F32 scale) or
 * `topk` (each tensor's `fraction` largest-magnitude coordinates, as indices and values).
 * Every peer and the audit decode the same bytes to the same Δw; bytes that do not follow
 * the charter's compression exactly are refused.
 */
export const Compression = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('int8') }).strict(),
  z.object({
    kind: z.literal('topk'),
    /** Share of each tensor's coordinates sent: ⌈fraction · n⌉ of them (at least one). */
    fraction: z.number().gt(0).max(1)
  }).strict()
])
export type Compression = z.infer<typeof Compression>
