import { medianOf } from '../ml/aggregate/median.ts'
import type { Judge } from '../ml/task.ts'
import type { AcceptanceRuleName, Extra, Measurement } from '../core/terms.ts'

export interface Verdict {
  accept: boolean
  /** How far the rule let the update lower the judge's score. */
  allowance: number
}

/**
 * What the record says of the proposer before this round: `bad` once the federation has
 * rejected as many of its updates of earlier rounds as the charter's strikes (one unless set),
 * `new` while none of them has been merged (under the charter's `probationOnce`: nor
 * rejected), `good` otherwise. Derived from the decision records alone
 * (FederationState.standing), so every peer and the audit give a vote the same one. No voter
 * says it, so none can claim it.
 */
export type Standing = 'new' | 'good' | 'bad'

/** When a peer accepts an update: one hook, as a federated-learning strategy overrides one method. */
export interface AcceptanceRule {
  readonly name: AcceptanceRuleName
  /** The measurements `decide` reads beyond `before` and `after`. */
  readonly needs: readonly Extra[]
  /** `standing` is the proposer's; only a rule that reads it (standing) needs it. */
  decide(measurement: Measurement, standing?: Standing): Verdict
}

export interface ToleranceSettings {
  /** How far an update may lower the score. */
  tolerance: number
  /** On top: the share of the score gained since the initial model that an update may undo. */
  relativeTolerance: number
}

/**
 * Accept an update that lowers the judge's score by at most `tolerance`, plus
 * `relativeTolerance` times what the federation has taught this peer since the initial
 * model (honest non-IID updates pull against each other harder as the model learns).
 */
export function toleranceRule ({ tolerance, relativeTolerance }: ToleranceSettings): AcceptanceRule {
  return {
    name: 'tolerance',
    needs: relativeTolerance > 0 ? ['initial'] : [],
    decide: ({ before, after, initial }) => {
      const allowance = relativeTolerance === 0 || initial === undefined ? tolerance : tolerance + relativeTolerance * Math.max(0, before - initial)
      return { accept: after - before >= -allowance, allowance }
    }
  }
}

export interface ImproveSettings {
  /** The share of what my own update gains me that a peer's update must gain me too. */
  minGain: number
}

/**
 * Accept an update only if it raises my judge's score by at least `minGain` times what my
 * own update of the round raises it (Zeno's must-improve test, against FLTrust's reference
 * of the voter's own update rather than a fixed bar). A label-flipped update lowers the
 * score a little, within any tolerance an honest non-IID update needs, but gains nothing:
 * measured on classify's dev split (docs/results/robustness-selection.md), every honest
 * voter's bar kept it out while two peers of four still accepted each honest update. With
 * no update of my own (I cannot train yet) the bar is not to lower my score.
 */
export function improveRule ({ minGain }: ImproveSettings): AcceptanceRule {
  return {
    name: 'improve',
    needs: ['reference'],
    decide: ({ before, after, reference }) => {
      const allowance = minGain * (before - (reference ?? before))
      return { accept: after - before >= -allowance, allowance }
    }
  }
}

/**
 * Accept an update only if the round's combined update is better with it than without it,
 * by at least `minGain` times what the whole combination gains (trust-design R5: judge the
 * candidate aggregate). Judged alone, a label-flipped update still improves shared features,
 * and an honest non-IID one may lower a voter's score; against the rest of the round, what
 * counts is whether it adds to what the others already bring.
 */
export function marginalRule ({ minGain }: ImproveSettings): AcceptanceRule {
  return {
    name: 'marginal',
    needs: ['combined', 'without'],
    decide: ({ before, combined = before, without = before }) => {
      const allowance = -minGain * Math.max(0, combined - before)
      return { accept: combined - without >= -allowance, allowance }
    }
  }
}

export interface ClasswiseSettings extends ImproveSettings {
  /** How many times what the update costs the classes it hurts it must bring the classes it helps, with the rest of the round. */
  classRatio: number
}

/**
 * What an update does to the round's combination class by class, each class weighted by its
 * examples among mine: what it brings the classes it helps, and what it costs the classes
 * it hurts (as a positive number). Their difference is the marginal rule's `combined − without`.
 */
export function classEffects (classes: NonNullable<Measurement['classes']>): { helps: number, hurts: number } {
  const n = classes.reduce((s, c) => s + c.n, 0)
  const sum = (part: (x: number) => number): number => n === 0 ? 0 : classes.reduce((s, c) => s + c.n * part(c.combined - c.without), 0) / n
  return { helps: sum(x => Math.max(0, x)), hurts: sum(x => Math.max(0, -x)) }
}

/**
 * The marginal rule, and on top: with the update in the round's combination, the classes
 * of my validation examples it helps must gain at least `classRatio` times what the classes
 * it hurts lose. An honest non-IID update lifts the classes its data holds and costs the
 * others a little; a label-flipped one teaches each class's examples to be another class,
 * so what it costs comes close to what it brings even where the sum stays positive
 * (classify's dev split: docs/results/robustness-selection.md). `classRatio` 1 is the
 * marginal rule itself.
 */
export function classwiseRule ({ minGain, classRatio }: ClasswiseSettings): AcceptanceRule {
  const marginal = marginalRule({ minGain })
  return {
    name: 'classwise',
    needs: ['combined', 'without', 'classes'],
    decide: (measurement) => {
      const verdict = marginal.decide(measurement)
      const { helps, hurts } = classEffects(measurement.classes ?? [])
      return { accept: verdict.accept && helps >= classRatio * hurts, allowance: verdict.allowance }
    }
  }
}

/**
 * Reputation from the record: a proposer in good standing is judged by the marginal rule; one
 * the federation has rejected in an earlier round, by the classwise rule. The marginal rule
 * rejects few honest updates but lets a label-flipped one through now and then; the classwise
 * rule keeps flipped updates out but rejects honest ones too (classify, test split,
 * docs/results/robustness.md). A member whose update was rejected once has shown what it
 * sends; only it pays the stricter test's cost. Votes sign the class scores always, so
 * whoever replays a vote needs nothing the record does not hold.
 */
export function standingRule (settings: ClasswiseSettings): AcceptanceRule {
  const lenient = marginalRule(settings)
  const strict = classwiseRule(settings)
  return {
    name: 'standing',
    needs: strict.needs,
    decide: (measurement, standing) => {
      if (standing === undefined) throw new TypeError('the standing rule decides by the proposer\'s standing, and none was given')
      return (standing === 'bad' ? strict : lenient).decide(measurement)
    }
  }
}

export interface ProbationSettings extends ClasswiseSettings {
  /** For a newcomer: the share of what the voter's own update gains it that its update must gain it too (the improve rule's minGain). */
  probationGain: number
  /** Only a voter whose own update of the round raises its score may accept a newcomer's update. */
  gainingVouchers?: boolean
  /** A member in bad standing must pass the newcomer's test too, on top of the classwise rule. */
  badOnProbation?: boolean
  /** For a newcomer: the share of what the voter's own update sharpens its predictions (lowers their mean entropy) that its update must sharpen them too. */
  minSharpening?: number
  /** What minSharpening measures against: the voter's own update (absent), or the round's median update as the voter measures it (`round`). */
  sharpeningYardstick?: 'round'
  /** For a newcomer: the share of the round's median movement of the voter's predictions that its update must move them too. */
  minMovement?: number
}

/**
 * The standing rule, with a probation: a proposer none of whose updates has been decided yet
 * must also pass the improve rule. Under the standing rule alone a label-flipped update
 * merged in round 1 now and then (classify, test: 1 of 9), before any rejection was on the
 * record; in round 1 a flipped update gains an honest voter nothing, while honest ones gain
 * it a tenth of what its own does and more (dev split, robustness-selection.md). Once as many
 * of its updates are rejected as the charter's strikes, a member is judged by the classwise
 * rule from then on; before that, one never merged is on probation again. Under
 * `badOnProbation` a member in bad standing must also pass the newcomer's test: the classwise
 * rule alone asks nothing of what an update gains, and an update on half-random NER tags that
 * failed probation twice then passed it in round 3 (dev split, robustness-selection.md).
 */
export function probationRule (settings: ProbationSettings): AcceptanceRule {
  const standing = standingRule(settings)
  const improve = improveRule({ minGain: settings.probationGain })
  const { minSharpening, minMovement } = settings
  return {
    name: 'probation',
    needs: [...standing.needs, ...improve.needs, ...(minSharpening === undefined ? [] : ['entropy' as const]), ...(minMovement === undefined ? [] : ['movement' as const])],
    decide: (measurement, given) => {
      const verdict = standing.decide(measurement, given)
      if (given === 'good' || (given === 'bad' && settings.badOnProbation !== true)) return verdict
      return {
        accept: verdict.accept && improve.decide(measurement).accept && (settings.gainingVouchers !== true || vouches(measurement)) &&
          (minSharpening === undefined || (settings.sharpeningYardstick === 'round' ? sharpensLikeTheRound : sharpens)(measurement, minSharpening)) &&
          (minMovement === undefined || movesLikeTheRound(measurement, minMovement)),
        allowance: verdict.allowance
      }
    }
  }
}

/**
 * Whether a newcomer's update moves the voter's predictions at least `share` of the round's
 * median movement (the voter's own update's and every other it combines). An update trained
 * on half-random labels carries half the signal and its random half cancels out: on classify's
 * dev split, in round 1, such updates moved an honest voter's predictions 0.27–0.49 times the
 * round's median, honest newcomers 0.60 times and more (robustness-selection.md), a wider gap
 * than how much they sharpen them. On test it kept them all out, and with two of five hostile
 * refused honest newcomers that both honest peers had to accept, as the round's sharpening
 * yardstick did. A voter with nothing of the round measured has no yardstick, and does not
 * refuse for it.
 */
function movesLikeTheRound ({ movement }: Measurement, share: number): boolean {
  if (movement === undefined) return true
  const typical = roundMovement(movement)
  return typical === undefined || movement.after >= share * typical
}

/** The round's median movement of the voter's predictions (its own update's and every other's it combines); undefined with none measured. */
export function roundMovement ({ reference, round }: NonNullable<Measurement['movement']>): number | undefined {
  const moves = [...(reference === undefined ? [] : [reference]), ...round]
  return moves.length === 0 ? undefined : medianOf(moves)
}

/**
 * Whether a newcomer's update makes the voter's model at least `share` as much surer of its
 * predictions as the voter's own update does. An update trained on half-random labels
 * teaches the model to be unsure: on classify's dev split it sharpened an honest voter's
 * predictions 0.16–0.60 times as much as the voter's own update did in round 1, honest
 * updates 0.46–1.97 times, where the gain share overlapped far more (robustness-selection.md).
 * A voter whose own update does not sharpen its model has no yardstick, and does not refuse
 * for it; nor does one that measured no entropy (the term is refused at charter time for a
 * judge that cannot).
 */
function sharpens ({ entropy }: Measurement, share: number): boolean {
  if (entropy?.reference === undefined) return true
  const own = entropy.before - entropy.reference
  return own <= 0 || entropy.before - entropy.after >= share * own
}

/**
 * Whether a newcomer's update sharpens the voter's predictions like the round's typical update:
 * at least the median of what the round's updates do (the voter's own and every other it
 * combines), short of it by at most `1 − share` of its size. Where the median flattens them
 * (a model overconfident after the last merge: in every vote of classify's third round on the
 * dev split), the update may flatten them by at most `2 − share` times as much. The voter's own
 * update alone is one member's data: on classify's dev split, in round 1, honest newcomers
 * sharpened as little as 0.42 of it and half-random labels up to 0.60; of the round's median,
 * honest 0.60 and up, noisy 0.52 at most; and a median of five measurements of which at most two
 * are hostile lies between honest ones. On test, with two of five hostile, it still refused
 * honest newcomers that both honest peers had to accept (robustness-selection.md). A voter with
 * nothing measured has no yardstick, and does not refuse for it.
 */
function sharpensLikeTheRound ({ entropy }: Measurement, share: number): boolean {
  if (entropy === undefined) return true
  const typical = roundSharpening(entropy)
  return typical === undefined || entropy.before - entropy.after >= typical - (1 - share) * Math.abs(typical)
}

/** The round's median sharpening of the voter's predictions (its own update's and every other's it combines); undefined with none measured. */
export function roundSharpening ({ before, reference, round }: NonNullable<Measurement['entropy']>): number | undefined {
  const sharpenings = [...(reference === undefined ? [] : [reference]), ...(round ?? [])].map(e => before - e)
  return sharpenings.length === 0 ? undefined : medianOf(sharpenings)
}

/**
 * Whether a voter may vouch for a newcomer: the improve test's yardstick is what the voter's
 * own update gains it, and a voter whose own update loses it score has none (its data or its
 * training is off: random labels do this), so under `gainingVouchers` it may not accept a
 * newcomer. Two members training on random labels otherwise accept each other's round-1
 * updates against their own losing yardsticks (robustness-selection.md). A voter with no
 * update of its own (it cannot train yet) judges by the improve test's bar alone.
 */
function vouches ({ before, reference }: Measurement): boolean {
  return reference === undefined || reference > before
}

/** What a run config says about acceptance; unset tolerances come from the task's judge. */
export interface AcceptanceConfig {
  acceptance: AcceptanceRuleName
  tolerance?: number
  relativeTolerance?: number
  minGain?: number
  classRatio?: number
  probationGain?: number
  gainingVouchers?: boolean
  badOnProbation?: boolean
  minSharpening?: number
  sharpeningYardstick?: 'round'
  minMovement?: number
}

/** `minGain` as chosen on classify's dev split, per rule (docs/results/robustness-selection.md). */
export const DEFAULT_MIN_GAIN = { improve: 0.1, marginal: 0, classwise: 0, standing: 0, probation: -0.1 } as const

/** `classRatio` as chosen on classify's dev split (docs/results/robustness-selection.md), for the classwise rule; the standing rule takes it as it is. */
export const DEFAULT_CLASS_RATIO = 1.8

/** The rule a run config names, with the task's judge filling in what the config leaves out. */
export function acceptanceRule (config: AcceptanceConfig, judge: Pick<Judge<unknown>, 'tolerance' | 'relativeTolerance'>): AcceptanceRule {
  switch (config.acceptance) {
    case 'tolerance': return toleranceRule({ tolerance: config.tolerance ?? judge.tolerance, relativeTolerance: config.relativeTolerance ?? judge.relativeTolerance ?? 0 })
    case 'improve': return improveRule({ minGain: config.minGain ?? DEFAULT_MIN_GAIN.improve })
    case 'marginal': return marginalRule({ minGain: config.minGain ?? DEFAULT_MIN_GAIN.marginal })
    case 'classwise': return classwiseRule({ minGain: config.minGain ?? DEFAULT_MIN_GAIN.classwise, classRatio: config.classRatio ?? DEFAULT_CLASS_RATIO })
    case 'standing': return standingRule({ minGain: config.minGain ?? DEFAULT_MIN_GAIN.standing, classRatio: config.classRatio ?? DEFAULT_CLASS_RATIO })
    case 'probation': return probationRule({ minGain: config.minGain ?? DEFAULT_MIN_GAIN.probation, classRatio: config.classRatio ?? DEFAULT_CLASS_RATIO, probationGain: config.probationGain ?? DEFAULT_MIN_GAIN.improve, gainingVouchers: config.gainingVouchers, badOnProbation: config.badOnProbation, minSharpening: config.minSharpening, sharpeningYardstick: config.sharpeningYardstick, minMovement: config.minMovement })
  }
}
