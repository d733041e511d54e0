/** Accuracy and F1 for single-label classification, from gold and predicted class ids. */
export interface ClassificationScores {
  accuracy: number
  microF1: number
  /** Mean F1 over the classes present in gold or predictions (scikit-learn's default set). */
  macroF1: number
}

export function classificationScores (gold: readonly number[], predicted: readonly number[]): ClassificationScores {
  if (gold.length !== predicted.length) throw new RangeError(`${gold.length} gold labels but ${predicted.length} predictions`)
  if (gold.length === 0) return { accuracy: 0, microF1: 0, macroF1: 0 }
  const classes = [...new Set([...gold, ...predicted])]
  let correct = 0
  const tp = new Map<number, number>()
  const fp = new Map<number, number>()
  const fn = new Map<number, number>()
  const bump = (m: Map<number, number>, k: number): void => { m.set(k, (m.get(k) ?? 0) + 1) }
  gold.forEach((g, i) => {
    const p = predicted[i] as number
    if (g === p) { correct++; bump(tp, g) } else { bump(fp, p); bump(fn, g) }
  })
  const f1 = (c: number): number => {
    const t = tp.get(c) ?? 0
    const denominator = 2 * t + (fp.get(c) ?? 0) + (fn.get(c) ?? 0)
    return denominator === 0 ? 0 : (2 * t) / denominator
  }
  const accuracy = correct / gold.length
  // Single-label: every error is one false positive and one false negative, so micro-F1 = accuracy.
  return { accuracy, microF1: accuracy, macroF1: classes.reduce((s, c) => s + f1(c), 0) / classes.length }
}

/** `counts[g][p]`: how many examples of gold class `g` were predicted as `p` (`classes` × `classes`). */
export function confusionMatrix (gold: readonly number[], predicted: readonly number[], classes: number): number[][] {
  if (gold.length !== predicted.length) throw new RangeError(`${gold.length} gold labels but ${predicted.length} predictions`)
  const counts = Array.from({ length: classes }, () => new Array<number>(classes).fill(0))
  gold.forEach((g, i) => {
    const row = counts[g]
    const p = predicted[i] as number
    if (row === undefined || p < 0 || p >= classes) throw new RangeError(`class id out of range [0, ${classes}): gold ${g}, predicted ${p}`)
    row[p] = (row[p] as number) + 1
  })
  return counts
}
