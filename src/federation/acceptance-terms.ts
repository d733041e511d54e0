import { z } from 'zod'
import { ConfigError, UnmeasuredVoteError, UnusableUpdateError, VoteAgainstRuleError } from '../core/errors.ts'
import type { Vote } from '../core/records.ts'
import type { Judge } from '../ml/task.ts'
import { acceptanceRule, AcceptanceRuleName, DEFAULT_CLASS_RATIO, DEFAULT_MIN_GAIN, Measurement, RULE_SETTINGS, unreadSetting, type AcceptanceConfig, type AcceptanceRule, type Standing, type Verdict } from './acceptance.ts'
import { Geometry, Robustness, robustVerdict } from './robust-acceptance.ts'

/**
 * How the federation decides on an update, written in its charter: every member judges by
 * these terms whatever its own config says, and anyone holding a vote (a peer, the audit)
 * can decide it again from the measurement it carries. A later setting for who decides
 * (the rule, an agent's model, or a model the rule guards) sits beside these.
 */
/**
 * Who may decide a vote's accept: `rule` (the acceptance rule decides; the voter only
 * explains), `model` (the voter's model decides; the protocol alone binds it) or `guarded`
 * (the model decides, but cannot accept what the rule rejects).
 */
export const Judgement = z.enum(['rule', 'model', 'guarded'])
export type Judgement = z.infer<typeof Judgement>

/** The accepts a judgement mode allows, given whether the update passes the acceptance rule. */
export function allowedAccepts (judgement: Judgement, passes: boolean): boolean[] {
  if (judgement === 'model') return [true, false]
  if (judgement === 'guarded') return passes ? [true, false] : [false]
  return [passes]
}

export const AcceptanceTerms = z.object({
  /** The rule a measurement is decided by (acceptance.ts). */
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

/** The terms a run config states (the founder writes them into the charter); unset tolerances come from the task's judge. */
export function termsOf (config: AcceptanceConfig & { voteScale: AcceptanceTerms['scale'], robustness?: Robustness | false, judgement?: Judgement, excludeRejected?: boolean, strikes?: number, probationOnce?: boolean }, judge: Pick<Judge<unknown>, 'tolerance' | 'relativeTolerance' | 'entropy' | 'movement'>): AcceptanceTerms {
  return {
    rule: config.acceptance,
    tolerance: config.tolerance ?? judge.tolerance,
    relativeTolerance: config.relativeTolerance ?? judge.relativeTolerance ?? 0,
    ...(config.acceptance === 'tolerance' ? {} : { minGain: config.minGain ?? DEFAULT_MIN_GAIN[config.acceptance] }),
    ...(config.acceptance === 'classwise' || config.acceptance === 'standing' || config.acceptance === 'probation' ? { classRatio: config.classRatio ?? DEFAULT_CLASS_RATIO } : {}),
    ...(config.acceptance === 'probation' ? { probationGain: config.probationGain ?? DEFAULT_MIN_GAIN.improve } : {}),
    ...(config.acceptance === 'probation' && config.gainingVouchers === true ? { gainingVouchers: true } : {}),
    ...(config.acceptance === 'probation' && config.badOnProbation === true ? { badOnProbation: true } : {}),
    ...(config.acceptance === 'probation' && config.probationOnce === true ? { probationOnce: onceTerm(config) } : {}),
    ...(config.acceptance === 'probation' && config.minSharpening !== undefined ? { minSharpening: sharpeningTerm(config.minSharpening, judge) } : {}),
    ...(config.acceptance === 'probation' && config.sharpeningYardstick === 'round' ? { sharpeningYardstick: yardstickTerm(config) } : {}),
    ...(config.acceptance === 'probation' && config.minMovement !== undefined ? { minMovement: movementTerm(config.minMovement, judge) } : {}),
    ...(config.excludeRejected === true ? { excludeRejected: true } : {}),
    // One strike is what a charter without the term means: it stays off the record, as before the term existed.
    ...((config.acceptance === 'standing' || config.acceptance === 'probation') && config.strikes !== undefined && config.strikes > 1 ? { strikes: config.strikes } : {}),
    scale: config.voteScale,
    ...(config.robustness === undefined || config.robustness === false ? {} : { robustness: config.robustness }),
    // `rule` is what a charter without judgement means: it stays off the record, as before modes existed.
    ...(config.judgement === undefined || config.judgement === 'rule' ? {} : { judgement: config.judgement })
  }
}

/** The minSharpening term, for a judge that can measure how sure a model is; ConfigError for one that cannot. */
function sharpeningTerm (share: number, judge: Pick<Judge<unknown>, 'entropy'>): number {
  if (judge.entropy === undefined) throw new ConfigError('minSharpening needs a judge that measures how sure the model is of its predictions (classify\'s and ner\'s logLikelihood judges); this task\'s judge does not')
  return share
}

/** The minMovement term, for a judge that can measure how far an update moves a model's predictions; ConfigError for one that cannot. */
function movementTerm (share: number, judge: Pick<Judge<unknown>, 'movement'>): number {
  if (judge.movement === undefined) throw new ConfigError('minMovement needs a judge that measures how far an update moves the model\'s predictions (classify\'s logLikelihood judge); this task\'s judge does not')
  return share
}

/** The probationOnce term, for a charter whose strikes leave a refused member short of bad standing; ConfigError for one that does not (it would change nothing). */
function onceTerm (config: { strikes?: number }): true {
  if ((config.strikes ?? 1) < 2) throw new ConfigError('probationOnce judges a member refused once, short of its strikes, as in good standing; with one strike that member is in bad standing: set strikes to 2 or more')
  return true
}

/** The round yardstick, for a charter that asks minSharpening; ConfigError for one that does not (it would measure for nothing). */
function yardstickTerm (config: Pick<AcceptanceConfig, 'minSharpening'>): 'round' {
  if (config.minSharpening === undefined) throw new ConfigError('sharpeningYardstick: round says what minSharpening measures against, and minSharpening is not set')
  return 'round'
}

/** The rule the terms name, ready to decide. */
export function ruleOf (terms: AcceptanceTerms): AcceptanceRule {
  return acceptanceRule({ acceptance: terms.rule, tolerance: terms.tolerance, relativeTolerance: terms.relativeTolerance, minGain: terms.minGain, classRatio: terms.classRatio, probationGain: terms.probationGain, gainingVouchers: terms.gainingVouchers, badOnProbation: terms.badOnProbation, minSharpening: terms.minSharpening, sharpeningYardstick: terms.sharpeningYardstick, minMovement: terms.minMovement }, terms)
}

export interface Ruling extends Verdict {
  /** The geometry bounds' part of it, in words for a rationale ('' without bounds). */
  geometry: string
}

/** What the terms decide of a measurement of a proposer in `standing`: the rule's verdict on the scores, and the geometry bounds on top. */
export function ruling (terms: AcceptanceTerms, measured: Measured, standing?: Standing): Ruling {
  const verdict = ruleOf(terms).decide(measured, standing)
  const bounded = measured.geometry === undefined ? { passes: true, summary: '' } : robustVerdict(measured.geometry, terms.robustness)
  return { accept: verdict.accept && bounded.passes, allowance: verdict.allowance, geometry: bounded.summary }
}

/**
 * Throws unless `vote` (`which` names it in errors) is what the charter's terms decide from
 * the measurement it carries, for a proposer in `standing` (as the record gives it).
 * Whether the measurement is true cannot be checked: it was taken on the voter's own data.
 * Where a later `judgement` setting lets a model decide, this is where it relaxes: under a
 * model only the unusable check stays; under a guarded model only an accept must follow.
 */
export function assertFollowsTerms (terms: AcceptanceTerms, vote: Vote, which: string, standing?: Standing): void {
  const measured = vote.measurement
  if (measured === undefined) throw new UnmeasuredVoteError(`${which} carries no measurement for the charter's ${terms.rule} rule to decide from`)
  if ('unusable' in measured) {
    if (vote.accept) throw new UnusableUpdateError(`${which} accepts an update its voter could not use (${measured.unusable})`)
    return
  }
  const missing = [...ruleOf(terms).needs.filter(key => measured[key] === undefined), ...(terms.robustness !== undefined && measured.geometry === undefined ? ['geometry'] : [])]
  if (missing.length > 0) throw new UnmeasuredVoteError(`${which} lacks ${missing.join(', ')}, which the charter's terms decide from`)
  const { accept } = ruling(terms, measured, standing)
  const judgement = terms.judgement ?? 'rule'
  if (!allowedAccepts(judgement, accept).includes(vote.accept)) {
    const whose = terms.rule === 'standing' || terms.rule === 'probation' ? ` for a proposer in ${standing ?? '?'} standing` : ''
    throw new VoteAgainstRuleError(`${which} ${vote.accept ? 'accepts' : 'rejects'} an update its own signed measurement makes the charter's ${terms.rule} rule ${accept ? 'accept' : 'reject'}${whose}, and the charter's judgement is ${judgement}`)
  }
}
