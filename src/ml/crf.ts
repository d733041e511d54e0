/**
 * A linear-chain CRF over per-token scores. A tag sequence y scores
 * start[y₀] + Σₜ emission[t][yₜ] + Σₜ transition[yₜ₋₁][yₜ], and its probability is the softmax
 * of that score over every sequence the chain's rule admits (for BIO: I-X only after B-X or
 * I-X). Unlike a per-token softmax, training it learns which tag follows which and how sure
 * each boundary is, so multi-word entities come out whole: +2.5 entity F1 on BC5CDR's dev
 * split (docs/results/ner-crf.md).
 *
 * Scores and emissions are row-major: one row of `classes` scores per token; transitions are
 * [previous][current]. Likelihood and gradients are computed here, in plain JS, by the
 * forward–backward algorithm: the tag sets are small, and it keeps TF.js's graph to the
 * emissions.
 */
export interface Chain {
  classes: number
  /** first[c]: may a sequence start with tag c. */
  first: readonly boolean[]
  /** follows[p][c]: may tag c come right after tag p. */
  follows: ReadonlyArray<readonly boolean[]>
}

/** The chain's learnt scores, as the weights carry them (`crf.start`, `crf.transitions`). */
export interface ChainScores {
  start: Float32Array
  transitions: Float32Array
}

/** BIO's rule: I-X only after B-X or I-X, so never first. */
export function bioChain (tags: readonly string[]): Chain {
  const type = (tag: string): string | undefined => tag.startsWith('B-') || tag.startsWith('I-') ? tag.slice(2) : undefined
  return {
    classes: tags.length,
    first: tags.map(t => !t.startsWith('I-')),
    follows: tags.map(prev => tags.map(cur => !cur.startsWith('I-') || type(prev) === type(cur)))
  }
}

/** Zero scores: decoding then only enforces the rule. */
export function zeroScores (classes: number): ChainScores {
  return { start: new Float32Array(classes), transitions: new Float32Array(classes * classes) }
}

function logSumExp (values: Float64Array): number {
  let max = -Infinity
  for (const v of values) if (v > max) max = v
  if (max === -Infinity) return max
  let sum = 0
  for (const v of values) sum += Math.exp(v - max)
  return max + Math.log(sum)
}

/** The score of moving from tag p to tag c, −∞ where the rule forbids it. */
function transitionScore (chain: Chain, scores: ChainScores): (p: number, c: number) => number {
  const C = chain.classes
  return (p, c) => (chain.follows[p] as readonly boolean[])[c] === true ? scores.transitions[p * C + c] as number : -Infinity
}

/** Forward scores (log-space, n × C): alpha[t][c] sums every admitted prefix ending in tag c at t. */
function forward (chain: Chain, emit: (t: number, c: number) => number, n: number, move: (p: number, c: number) => number, scores: ChainScores): Float64Array {
  const C = chain.classes
  const alpha = new Float64Array(n * C)
  const terms = new Float64Array(C)
  for (let c = 0; c < C; c++) alpha[c] = chain.first[c] === true ? (scores.start[c] as number) + emit(0, c) : -Infinity
  for (let t = 1; t < n; t++) {
    for (let c = 0; c < C; c++) {
      for (let p = 0; p < C; p++) terms[p] = (alpha[(t - 1) * C + p] as number) + move(p, c)
      alpha[t * C + c] = logSumExp(terms) + emit(t, c)
    }
  }
  return alpha
}

/** Backward scores (log-space, n × C): beta[t][p] sums every admitted suffix after tag p at t. */
function backward (chain: Chain, emit: (t: number, c: number) => number, n: number, move: (p: number, c: number) => number): Float64Array {
  const C = chain.classes
  const beta = new Float64Array(n * C)
  const terms = new Float64Array(C)
  for (let t = n - 2; t >= 0; t--) {
    for (let p = 0; p < C; p++) {
      for (let c = 0; c < C; c++) terms[c] = move(p, c) + emit(t + 1, c) + (beta[(t + 1) * C + c] as number)
      beta[t * C + p] = logSumExp(terms)
    }
  }
  return beta
}

/** Row reader over `emissions` for the sequence that starts at row `from`. */
function emitter (emissions: ArrayLike<number>, from: number, classes: number): (t: number, c: number) => number {
  return (t, c) => emissions[(from + t) * classes + c] as number
}

/** One sequence's forward scores and log-partition, with the readers they were made with (a backward pass takes the same). */
function lattice (chain: Chain, emissions: ArrayLike<number>, from: number, n: number, scores: ChainScores): { move: (p: number, c: number) => number, emit: (t: number, c: number) => number, alpha: Float64Array, logZ: number } {
  const move = transitionScore(chain, scores)
  const emit = emitter(emissions, from, chain.classes)
  const alpha = forward(chain, emit, n, move, scores)
  return { move, emit, alpha, logZ: logSumExp(alpha.subarray((n - 1) * chain.classes)) }
}

/**
 * Negative log-likelihood of one sequence's `labels` (rows from … from + labels.length − 1 of
 * `emissions`); with `grad`, adds its gradient with respect to emissions, start and
 * transitions into it (same layouts). Judging needs only the likelihood: no backward pass.
 */
export function chainNll (chain: Chain, emissions: ArrayLike<number>, from: number, labels: readonly number[], scores: ChainScores, grad?: { emissions: Float32Array, start: Float32Array, transitions: Float32Array }): number {
  const C = chain.classes
  const n = labels.length
  if (n === 0) return 0
  const { move, emit, alpha, logZ } = lattice(chain, emissions, from, n, scores)
  let gold = (scores.start[labels[0] as number] as number) + emit(0, labels[0] as number)
  for (let t = 1; t < n; t++) gold += move(labels[t - 1] as number, labels[t] as number) + emit(t, labels[t] as number)
  if (!Number.isFinite(gold)) throw new RangeError('labels break the chain\'s rule (e.g. an I- tag with no B- before it)')
  if (grad === undefined) return logZ - gold
  const beta = backward(chain, emit, n, move)
  // Gradients: expected counts under the model minus the gold sequence's counts.
  for (let t = 0; t < n; t++) {
    for (let c = 0; c < C; c++) {
      const marginal = Math.exp((alpha[t * C + c] as number) + (beta[t * C + c] as number) - logZ)
      grad.emissions[(from + t) * C + c] = (grad.emissions[(from + t) * C + c] as number) + marginal
      if (t === 0) grad.start[c] = (grad.start[c] as number) + marginal
    }
    grad.emissions[(from + t) * C + (labels[t] as number)] = (grad.emissions[(from + t) * C + (labels[t] as number)] as number) - 1
  }
  grad.start[labels[0] as number] = (grad.start[labels[0] as number] as number) - 1
  for (let t = 1; t < n; t++) {
    for (let p = 0; p < C; p++) {
      for (let c = 0; c < C; c++) {
        const s = move(p, c)
        if (s === -Infinity) continue
        grad.transitions[p * C + c] = (grad.transitions[p * C + c] as number) + Math.exp((alpha[(t - 1) * C + p] as number) + s + emit(t, c) + (beta[t * C + c] as number) - logZ)
      }
    }
    const at = (labels[t - 1] as number) * C + (labels[t] as number)
    grad.transitions[at] = (grad.transitions[at] as number) - 1
  }
  return logZ - gold
}

/**
 * How unsure the chain is of each tag of one sequence (rows from … from + length − 1): the
 * entropy (nats) of each token's marginal tag distribution under the chain, summed over the
 * tokens. A model taught half-random tags spreads these marginals; an honest one narrows them.
 */
export function chainTokenEntropy (chain: Chain, emissions: ArrayLike<number>, from: number, length: number, scores: ChainScores): number {
  const C = chain.classes
  if (length === 0) return 0
  const { move, emit, alpha, logZ } = lattice(chain, emissions, from, length, scores)
  const beta = backward(chain, emit, length, move)
  let total = 0
  for (let t = 0; t < length; t++) {
    for (let c = 0; c < C; c++) {
      const logP = (alpha[t * C + c] as number) + (beta[t * C + c] as number) - logZ
      if (logP !== -Infinity) total -= Math.exp(logP) * logP
    }
  }
  return total
}

/** The highest-scoring sequence the rule admits for rows from … from + length − 1 (Viterbi), as tag indices. */
export function chainDecode (chain: Chain, emissions: ArrayLike<number>, from: number, length: number, scores: ChainScores = zeroScores(chain.classes)): number[] {
  const C = chain.classes
  if (length === 0) return []
  const move = transitionScore(chain, scores)
  let score = Float64Array.from({ length: C }, (_, c) => chain.first[c] === true ? (scores.start[c] as number) + (emissions[from * C + c] as number) : -Infinity)
  const back: Int32Array[] = []
  for (let t = 1; t < length; t++) {
    const next = new Float64Array(C).fill(-Infinity)
    const prevOf = new Int32Array(C)
    for (let c = 0; c < C; c++) {
      for (let p = 0; p < C; p++) {
        const s = (score[p] as number) + move(p, c)
        if (s > (next[c] as number)) { next[c] = s; prevOf[c] = p }
      }
      next[c] = (next[c] as number) + (emissions[(from + t) * C + c] as number)
    }
    score = next
    back.push(prevOf)
  }
  let best = 0
  for (let c = 1; c < C; c++) if ((score[c] as number) > (score[best] as number)) best = c
  const path = [best]
  for (let t = length - 2; t >= 0; t--) path.push(best = (back[t] as Int32Array)[best] as number)
  return path.reverse()
}
