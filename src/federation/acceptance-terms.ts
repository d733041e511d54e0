import { ConfigError, JudgementMismatchError, UnmeasuredVoteError, UnusableUpdateError, VoteAgainstRuleError } from '../core/errors.ts'
import { POLICY, type Vote } from '../core/records.ts'
import type { Judge } from '../ml/task.ts'
import { acceptanceRule, DEFAULT_CLASS_RATIO, DEFAULT_MIN_GAIN, type AcceptanceConfig, type AcceptanceRule, type Standing, type Verdict } from './acceptance.ts'
import { robustVerdict } from './robust-acceptance.ts'
import type { AcceptanceTerms, Judgement, Measured, Robustness } from '../core/terms.ts'

/** The judgement a charter's votes fall under: its terms' (rule when they name none); model, the voter's own, under a charter without terms. */
export function judgementOf (terms: AcceptanceTerms | undefined): Judgement {
  return terms === undefined ? 'model' : terms.judgement ?? 'rule'
}

/** The accepts a judgement mode allows, given whether the update passes the acceptance rule. */
export function allowedAccepts (judgement: Judgement, passes: boolean): boolean[] {
  if (judgement === 'model') return [true, false]
  if (judgement === 'guarded') return passes ? [true, false] : [false]
  return [passes]
}

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
 * model only the unusable check stays; under a guarded model only an accept must follow;
 * but a vote the policy decided (`decidedBy: policy`), or one declaring another judgement than the
 * charter's, must follow the rule. That a vote naming a model was decided by that model cannot be checked.
 */
export function assertFollowsTerms (terms: AcceptanceTerms, vote: Vote, which: string, standing?: Standing): void {
  const judgement = judgementOf(terms)
  const measured = vote.measurement
  if (measured === undefined) throw new UnmeasuredVoteError(`${which} carries no measurement for the charter's ${terms.rule} rule to decide from`)
  if ('unusable' in measured) {
    if (vote.accept) throw new UnusableUpdateError(`${which} accepts an update its voter could not use (${measured.unusable})`)
    return
  }
  const missing = [...ruleOf(terms).needs.filter(key => measured[key] === undefined), ...(terms.robustness !== undefined && measured.geometry === undefined ? ['geometry'] : [])]
  if (missing.length > 0) throw new UnmeasuredVoteError(`${which} lacks ${missing.join(', ')}, which the charter's terms decide from`)
  const { accept } = ruling(terms, measured, standing)
  // A label other than the charter's stands only on a vote the rule decides as it says (votes
  // before 2026-12-07 took the member's own mode, or `rule` from the policy, whatever the charter's).
  if (vote.judgement !== undefined && vote.judgement !== judgement && vote.accept !== accept) {
    throw new JudgementMismatchError(`${which} declares ${vote.judgement} judgement, the charter's is ${judgement}, and ${vote.accept ? 'accepts' : 'rejects'} an update the rule would ${accept ? 'accept' : 'reject'}`)
  }
  if (!allowedAccepts(vote.decidedBy === POLICY ? 'rule' : judgement, accept).includes(vote.accept)) {
    const whose = terms.rule === 'standing' || terms.rule === 'probation' ? ` for a proposer in ${standing ?? '?'} standing` : ''
    throw new VoteAgainstRuleError(`${which} ${vote.accept ? 'accepts' : 'rejects'} an update its own signed measurement makes the charter's ${terms.rule} rule ${accept ? 'accept' : 'reject'}${whose}, and ${vote.decidedBy === POLICY ? 'the policy decided it' : `the charter's judgement is ${judgement}`}`)
  }
}
