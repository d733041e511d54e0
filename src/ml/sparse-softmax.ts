import * as tf from '@tensorflow/tfjs'
import { InvalidWeightsError } from '../core/errors.ts'
import type { SparseVector } from '../data/features.ts'
import { mixSeed, Rng } from '../data/rng.ts'
import { chainNll, type Chain, type ChainScores } from './crf.ts'
import { assertCompatible, ShiftedTensor, type Tensor, type Weights } from './weights.ts'

/**
 * Sparse features → optional hidden ReLU layer → softmax: the model under the classify, NER
 * and QA tasks; with a `chain`, the scores feed a linear-chain CRF over each sequence instead
 * (crf.ts). Inputs stay sparse (see sparseMatMul), so wide hashed features are cheap.
 * Trained with Adam in a hand-written loop over seeded batches, so a seed fixes the result
 * bit for bit; every tensor is disposed (tests check tf.memory()).
 */
export interface SoftmaxShape {
  features: number
  hidden: number
  classes: number
  /** Score each sequence's classes jointly under this rule, with learnt `crf.start` and `crf.transitions`. */
  chain?: Chain
}

export interface SoftmaxTraining {
  epochs: number
  batchSize: number
  learningRate: number
  /** Adam's ε: a larger one damps the full-sized steps a fresh Adam takes on tiny gradients. @default 1e-7 */
  epsilon?: number
  seed: number
  /**
   * Per row, a teacher's distribution over classes (class, probability) to mix into its
   * one-hot label with `weight`: the cross-entropy to that mix adds `weight` × KL(teacher ‖
   * model), up to a constant. Rows without one keep their label.
   */
  soft?: { targets: ReadonlyArray<ReadonlyArray<readonly [number, number]> | undefined>, weight: number }
  /** With a chain: the lengths of the consecutive runs of rows that form sequences; batches hold whole sequences. */
  sequences?: readonly number[]
  signal?: AbortSignal
  onEpoch?: (epoch: number, loss: number) => void
}

function layers (shape: SoftmaxShape): Array<[number, number]> {
  return shape.hidden === 0 ? [[shape.features, shape.classes]] : [[shape.features, shape.hidden], [shape.hidden, shape.classes]]
}


/** Each tensor's shape, by name: what a model of `shape` must hold (checked without building one); the dense layers' tensors, then the chain's. */
export function softmaxLayout (shape: SoftmaxShape): Map<string, { shape: number[] }> {
  const layout = new Map<string, { shape: number[] }>()
  layers(shape).forEach(([fanIn, fanOut], l) => {
    layout.set(`dense${l}.kernel`, { shape: [fanIn, fanOut] })
    layout.set(`dense${l}.bias`, { shape: [fanOut] })
  })
  if (shape.chain !== undefined) {
    layout.set('crf.start', { shape: [shape.classes] })
    layout.set('crf.transitions', { shape: [shape.classes, shape.classes] })
  }
  return layout
}

/** The order params come in: the layout's. */
const names = (shape: SoftmaxShape): string[] => [...softmaxLayout(shape).keys()]

/** Glorot-uniform kernels, zero biases and chain scores, from a seeded stream; tensors in name order. */
export function initSoftmax (shape: SoftmaxShape, seed: number): Weights {
  const rng = new Rng(mixSeed(seed, 0x1417))
  const w: Weights = new Map()
  // Kernels draw from the stream in layer order; everything else starts at zero.
  for (const [name, { shape: dims }] of softmaxLayout(shape)) {
    const [fanIn = 0, fanOut = 0] = dims
    const limit = Math.sqrt(6 / (fanIn + fanOut))
    const size = dims.reduce((a, b) => a * b, 1)
    w.set(name, { shape: dims, data: name.endsWith('.kernel') ? Float32Array.from({ length: size }, () => (2 * rng.next() - 1) * limit) : new Float32Array(size) })
  }
  return new Map([...w].sort(([a], [b]) => a < b ? -1 : 1))
}

/** The chain's learnt scores in a model's weights. */
export function chainScores (weights: Weights): ChainScores {
  const start = weights.get('crf.start')
  const transitions = weights.get('crf.transitions')
  if (start === undefined || transitions === undefined) throw new InvalidWeightsError('weights lack the CRF\'s crf.start and crf.transitions')
  return { start: start.data, transitions: transitions.data }
}

function toTensors (shape: SoftmaxShape, w: Weights): tf.Tensor[] {
  return names(shape).map(n => {
    const t = w.get(n)
    if (t === undefined) throw new InvalidWeightsError(`weights lack tensor ${n}`)
    return tf.tensor(t.data, t.shape)
  })
}

/** A batch of sparse rows as flat (feature, row, value) triples, ready for sparseMatMul. */
interface SparseBatch {
  size: number
  feature: tf.Tensor1D
  row: tf.Tensor1D
  value: tf.Tensor2D
}

/** Built outside the function being differentiated, so its tensors outlive the forward pass. */
function sparseBatch (rows: readonly SparseVector[]): SparseBatch {
  const feature: number[] = []
  const row: number[] = []
  const value: number[] = []
  rows.forEach((r, i) => { r.indices.forEach((f, k) => { feature.push(f); row.push(i); value.push(r.values[k] as number) }) })
  return { size: rows.length, feature: tf.tensor1d(feature, 'int32'), row: tf.tensor1d(row, 'int32'), value: tf.tensor2d(value, [value.length, 1]) }
}

/**
 * x·W for a batch of sparse rows without densifying it: gather the rows of W the features
 * hit, scale them, and sum them per example with scatterND (which sums duplicates). The
 * gradient is written by hand, with scatterND again, because tf.gather's own gradient
 * needs UnsortedSegmentSum, which the wasm backend lacks.
 */
function sparseMatMul (kernel: tf.Tensor, x: SparseBatch): tf.Tensor2D {
  const [features, width] = kernel.shape as [number, number]
  const product = tf.customGrad(((w: tf.Tensor) => ({
    value: tf.scatterND(x.row.expandDims(1), tf.mul(tf.gather(w, x.feature), x.value), [x.size, width]),
    gradFunc: (dy: tf.Tensor) => tf.scatterND(x.feature.expandDims(1), tf.mul(tf.gather(dy, x.row), x.value), [features, width])
  })) as Parameters<typeof tf.customGrad>[0])
  return product(kernel) as tf.Tensor2D
}

/** Per-row class scores from the dense layers' params (a chain's come after them). */
function forward (shape: SoftmaxShape, params: tf.Tensor[], x: SparseBatch): tf.Tensor2D {
  let h = tf.add(sparseMatMul(params[0] as tf.Tensor, x), params[1] as tf.Tensor1D) as tf.Tensor2D
  for (let l = 1; l < layers(shape).length; l++) {
    h = tf.add(tf.matMul(tf.relu(h), params[2 * l] as tf.Tensor2D), params[2 * l + 1] as tf.Tensor1D)
  }
  return h
}

/** Local training from `base`; returns the new weights and the last epoch's mean loss (per row). */
export async function trainSoftmax (shape: SoftmaxShape, base: Weights, rows: readonly SparseVector[], labels: readonly number[], options: SoftmaxTraining): Promise<{ weights: Weights, loss: number }> {
  assertCompatible(base, softmaxLayout(shape))
  const rng = new Rng(options.seed)
  const params = toTensors(shape, base).map(t => { const v = tf.variable(t); t.dispose(); return v })
  const optimizer = tf.train.adam(options.learningRate, 0.9, 0.999, options.epsilon ?? 1e-7)
  const epochLoss = shape.chain === undefined
    ? epochOf(() => chunks(rng.shuffle(rows.map((_, i) => i)), options.batchSize), batch => softmaxStep(shape, params, optimizer, rows, labels, batch, options.soft))
    : epochOf(sequenceBatches(rng, rows.length, options.sequences, options.batchSize), chainStep(shape, shape.chain, params, optimizer, rows, labels))
  let loss = 0
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      options.signal?.throwIfAborted()
      loss = await epochLoss() / Math.max(1, rows.length)
      options.onEpoch?.(epoch, loss)
    }
    const weights: Weights = new Map()
    names(shape).forEach((n, i) => {
      const p = params[i] as tf.Variable
      weights.set(n, { shape: [...p.shape], data: Float32Array.from(p.dataSync() as Float32Array) })
    })
    return { weights: new Map([...weights].sort(([a], [b]) => a < b ? -1 : 1)), loss }
  } finally {
    optimizer.dispose()
    tf.dispose(params)
  }
}

/** One epoch: `step` on each of the epoch's batches, in order; returns the summed loss. */
function epochOf<B> (batches: () => B[], step: (batch: B) => Promise<number>): () => Promise<number> {
  return async () => {
    let sum = 0
    for (const batch of batches()) sum += await step(batch)
    return sum
  }
}

function chunks (order: number[], size: number): number[][] {
  const out: number[][] = []
  for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size))
  return out
}

/** One Adam step on a batch of rows by cross-entropy; returns the batch's summed loss. */
async function softmaxStep (shape: SoftmaxShape, params: tf.Variable[], optimizer: tf.Optimizer, rows: readonly SparseVector[], labels: readonly number[], batch: number[], soft: SoftmaxTraining['soft']): Promise<number> {
  const cost = tf.tidy(() => {
    const x = sparseBatch(batch.map(j => rows[j] as SparseVector))
    const y = targets(batch, labels, shape.classes, soft)
    return optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(shape, params, x)) as tf.Scalar, true) as tf.Scalar
  })
  const mean = (await cost.data())[0] as number
  cost.dispose()
  return mean * batch.length
}

/**
 * Each epoch, the sequences in a seeded order, grouped into batches of about `size` rows; a
 * batch lists its sequences, each by its rows.
 */
function sequenceBatches (rng: Rng, rows: number, lengths: readonly number[] | undefined, size: number): () => number[][][] {
  if (lengths === undefined || lengths.reduce((a, b) => a + b, 0) !== rows) throw new RangeError('a chain model trains on sequences: their lengths must cover the rows')
  const sequences: number[][] = []
  lengths.reduce((at, n) => { sequences.push(Array.from({ length: n }, (_, k) => at + k)); return at + n }, 0)
  return () => {
    const out: number[][][] = []
    let batch: number[][] = []
    let batchRows = 0
    for (const s of rng.shuffle(sequences.map((_, i) => i))) {
      const sequence = sequences[s] as number[]
      batch.push(sequence)
      batchRows += sequence.length
      if (batchRows >= size) { out.push(batch); batch = []; batchRows = 0 }
    }
    if (batch.length > 0) out.push(batch)
    return out
  }
}

/**
 * One Adam step on a batch of whole sequences by the CRF's negative log-likelihood. The
 * likelihood and its gradient with respect to the emissions and chain scores come from
 * crf.ts; the step minimises Σ emissions · ∂NLL/∂emissions (+ the same for the chain's
 * params), whose gradient is the NLL's, so TF.js carries it back through the sparse layer.
 */
function chainStep (shape: SoftmaxShape, chain: Chain, params: tf.Variable[], optimizer: tf.Optimizer, rows: readonly SparseVector[], labels: readonly number[]): (batch: number[][]) => Promise<number> {
  const [start, transitions] = params.slice(-2) as [tf.Variable, tf.Variable]
  return async batch => {
    const flat = batch.flat()
    let nll = 0
    tf.tidy(() => {
      const x = sparseBatch(flat.map(j => rows[j] as SparseVector))
      const scores = { start: start.dataSync() as Float32Array, transitions: transitions.dataSync() as Float32Array }
      optimizer.minimize(() => {
        const emissions = forward(shape, params, x)
        const grad = { emissions: new Float32Array(emissions.size), start: new Float32Array(chain.classes), transitions: new Float32Array(chain.classes ** 2) }
        const values = emissions.dataSync()
        let at = 0
        for (const sequence of batch) {
          nll += chainNll(chain, values, at, sequence.map(j => labels[j] as number), scores, grad)
          at += sequence.length
        }
        return tf.addN([
          tf.sum(tf.mul(emissions, tf.tensor2d(grad.emissions, emissions.shape))),
          tf.sum(tf.mul(start, tf.tensor1d(grad.start))),
          tf.sum(tf.mul(transitions, tf.tensor2d(grad.transitions, [chain.classes, chain.classes])))
        ]).div(flat.length) as tf.Scalar
      })
    })
    return nll
  }
}

/** The batch's target rows: one-hot labels, mixed with the soft targets some rows have. */
function targets (batch: readonly number[], labels: readonly number[], classes: number, soft: SoftmaxTraining['soft']): tf.Tensor2D {
  if (soft === undefined || soft.weight === 0 || batch.every(j => soft.targets[j] === undefined)) {
    return tf.oneHot(tf.tensor1d(batch.map(j => labels[j] as number), 'int32'), classes) as tf.Tensor2D
  }
  const y = new Float32Array(batch.length * classes)
  batch.forEach((j, r) => {
    const target = soft.targets[j]
    const hard = target === undefined ? 1 : 1 - soft.weight
    y[r * classes + (labels[j] as number)] = hard
    for (const [cls, p] of target ?? []) y[r * classes + cls] = (y[r * classes + cls] as number) + soft.weight * p
  })
  return tf.tensor2d(y, [batch.length, classes])
}

/** The most likely class of each row (the first of equal scores, as argMax takes it). */
export function predictSoftmax (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[]): number[] {
  const logits = softmaxLogits(shape, weights, rows)
  return rows.map((_, r) => {
    let best = 0
    for (let c = 1; c < shape.classes; c++) if ((logits[r * shape.classes + c] as number) > (logits[r * shape.classes + best] as number)) best = c
    return best
  })
}

/**
 * Every class's logit for each row, row-major (rows × classes): for decoders that constrain
 * the choice. Computed in plain Float32 over the sparse rows rather than on the backend:
 * scoring reads only the rows of the first kernel that the examples' features hit, where
 * the backend would first copy every weight in (a judge scores a model per update, and a
 * 2²⁰-feature NER model is 20 MiB). The first layer adds rounded products in row order, as
 * training's gather and scatterND do.
 */
export function softmaxLogits (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[]): Float32Array {
  const dense = layers(shape).map(([fanIn, fanOut], l) => ({ fanIn, fanOut, kernel: tensorOf(weights, `dense${l}.kernel`, fanIn * fanOut), bias: tensorOf(weights, `dense${l}.bias`, fanOut).data }))
  const out = new Float32Array(rows.length * shape.classes)
  const first = dense[0] as (typeof dense)[number]
  const kernelRow = rowReader(first.kernel, first.fanOut, rows, shape.features)
  const hidden = dense.map(d => new Float32Array(d.fanOut))
  rows.forEach((row, r) => {
    const h = hidden[0] as Float32Array
    h.fill(0)
    for (let k = 0; k < row.indices.length; k++) {
      const feature = row.indices[k] as number
      if (!(feature >= 0 && feature < shape.features)) throw new RangeError(`feature ${feature} is outside the model's ${shape.features}`)
      const value = row.values[k] as number
      const { data, at } = kernelRow(feature)
      for (let j = 0; j < first.fanOut; j++) h[j] = (h[j] as number) + Math.fround(value * (data[at + j] as number))
    }
    for (let j = 0; j < first.fanOut; j++) h[j] = (h[j] as number) + (first.bias[j] as number)
    for (let l = 1; l < dense.length; l++) {
      const { fanIn, fanOut, bias } = dense[l] as (typeof dense)[number]
      const kernel = (dense[l] as (typeof dense)[number]).kernel.data
      const input = hidden[l - 1] as Float32Array
      const next = hidden[l] as Float32Array
      next.fill(0)
      for (let i = 0; i < fanIn; i++) {
        const a = Math.max(0, input[i] as number)
        if (a === 0) continue
        for (let o = 0; o < fanOut; o++) next[o] = (next[o] as number) + a * (kernel[i * fanOut + o] as number)
      }
      for (let o = 0; o < fanOut; o++) next[o] = (next[o] as number) + (bias[o] as number)
    }
    out.set(hidden[dense.length - 1] as Float32Array, r * shape.classes)
  })
  return out
}

/**
 * A kernel's row by feature: in place for stored weights; for a shifted model, the rows
 * `rows` hit, each computed once (a judge's examples share most of their words).
 */
function rowReader (kernel: Tensor, width: number, rows: readonly SparseVector[], features: number): (feature: number) => { data: Float32Array, at: number } {
  if (!(kernel instanceof ShiftedTensor)) {
    const stored = { data: kernel.data, at: 0 }
    return feature => { stored.at = feature * width; return stored }
  }
  const slot = new Int32Array(features).fill(-1)
  let hit = 0
  for (const row of rows) {
    for (const feature of row.indices) {
      // Out of range: left for the caller, which names it.
      if (feature >= 0 && feature < features && slot[feature] === -1) slot[feature] = hit++
    }
  }
  const computed = { data: new Float32Array(hit * width), at: 0 }
  for (let feature = 0; feature < features; feature++) {
    const at = slot[feature] as number
    if (at !== -1) kernel.read(feature * width, width, computed.data.subarray(at * width, (at + 1) * width))
  }
  return feature => { computed.at = (slot[feature] as number) * width; return computed }
}

/** Mean log-probability of each row's label (≤ 0; higher is better), e.g. of a teacher's tokens under teacher forcing. */
export function softmaxLogLikelihood (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[], labels: readonly number[]): number {
  return meanLogLikelihoodOf(softmaxLogits(shape, weights, rows), shape.classes, labels)
}

/** The mean of each row's log-probability of its label, from the rows' logits (0 for no rows). */
export function meanLogLikelihoodOf (logits: Float32Array, classes: number, labels: readonly number[]): number {
  const logProbs = logProbsOf(logits, classes, labels)
  return logProbs.length === 0 ? 0 : logProbs.reduce((a, b) => a + b, 0) / logProbs.length
}

/**
 * `compute` remembered for the last rows asked of each model: a judge asks a model's score
 * and then how sure it is (minSharpening), and one forward pass serves both. Weak: a model no
 * one holds is not kept for this.
 */
export function rememberLogits<Row> (compute: (weights: Weights, rows: Row[]) => Float32Array): (weights: Weights, rows: Row[]) => Float32Array {
  const known = new WeakMap<Weights, { rows: Row[], logits: Float32Array }>()
  return (weights, rows) => {
    const hit = known.get(weights)
    if (hit?.rows === rows) return hit.logits
    const logits = compute(weights, rows)
    known.set(weights, { rows, logits })
    return logits
  }
}

/** The mean entropy (nats) of the class distributions that rows' logits (rows × classes, row-major) give (0 for none). */
export function meanEntropyOf (logits: Float32Array, classes: number): number {
  return meanOverRows(logits.length, classes, at => {
    const max = rowMax(logits, at, classes)
    let sum = 0
    let weighted = 0
    for (let c = 0; c < classes; c++) {
      const z = (logits[at + c] as number) - max
      const e = Math.exp(z)
      sum += e
      weighted += e * z
    }
    // H = −Σ p log p with p = e^z / S: log S − Σ e^z z / S.
    return Math.log(sum) - weighted / sum
  })
}

/**
 * The mean KL divergence (nats) of the class distributions that `to`'s logits give from those
 * `from`'s give, row by row (rows × classes, row-major; 0 for none).
 */
export function meanKlOf (to: Float32Array, from: Float32Array, classes: number): number {
  if (to.length !== from.length) throw new RangeError(`${to.length / classes} rows against ${from.length / classes}`)
  return meanOverRows(to.length, classes, at => {
    const maxTo = rowMax(to, at, classes)
    const maxFrom = rowMax(from, at, classes)
    let sumTo = 0
    let sumFrom = 0
    let weighted = 0
    for (let c = 0; c < classes; c++) {
      const zt = (to[at + c] as number) - maxTo
      const zf = (from[at + c] as number) - maxFrom
      const e = Math.exp(zt)
      sumTo += e
      sumFrom += Math.exp(zf)
      weighted += e * (zt - zf)
    }
    // KL(p‖q) = Σ p (log p − log q) with p = e^zt / St, q = e^zf / Sf: Σ e^zt (zt − zf) / St − log St + log Sf.
    return Math.max(0, weighted / sumTo - Math.log(sumTo) + Math.log(sumFrom))
  })
}

/** The mean over rows (`length` values, rows × classes, row-major) of what `row` gives for each row's first offset (0 for none). */
function meanOverRows (length: number, classes: number, row: (at: number) => number): number {
  const rows = length / classes
  if (rows === 0) return 0
  let total = 0
  for (let r = 0; r < rows; r++) total += row(r * classes)
  return total / rows
}

/** Each row's log-probability of its label. */
export function softmaxLogProbs (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[], labels: readonly number[]): Float64Array {
  return logProbsOf(softmaxLogits(shape, weights, rows), shape.classes, labels)
}

/** Each row's log-probability of its label, from the rows' logits (rows × classes, row-major). */
function logProbsOf (logits: Float32Array, classes: number, labels: readonly number[]): Float64Array {
  if (labels.length * classes !== logits.length) throw new RangeError(`${labels.length} labels for ${logits.length / classes} rows`)
  const out = new Float64Array(labels.length)
  for (let r = 0; r < labels.length; r++) {
    const at = r * classes
    const max = rowMax(logits, at, classes)
    let sum = 0
    for (let c = 0; c < classes; c++) sum += Math.exp((logits[at + c] as number) - max)
    const label = labels[r] as number
    if (!(label >= 0 && label < classes)) throw new RangeError(`label ${label} is outside the model's ${classes} classes`)
    out[r] = (logits[at + label] as number) - max - Math.log(sum)
  }
  return out
}

/** The largest of a row's logits: subtracted before exponentiating, so no e^z overflows. */
function rowMax (logits: Float32Array, at: number, classes: number): number {
  let max = -Infinity
  for (let c = 0; c < classes; c++) max = Math.max(max, logits[at + c] as number)
  return max
}

/** A tensor, checked to be there at the size the shape needs. */
function tensorOf (weights: Weights, name: string, size: number): Tensor {
  const t = weights.get(name)
  if (t === undefined) throw new InvalidWeightsError(`weights lack tensor ${name}`)
  const values = t.shape.reduce((a, b) => a * b, 1)
  if (values !== size) throw new InvalidWeightsError(`tensor ${name} has ${values} values, not the ${size} the model needs`)
  return t
}

/** Each label's number of rows and mean log-probability of it, in label order (labels without rows left out): an update's effect class by class. */
export function softmaxClassLogLikelihoods (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[], labels: readonly number[]): Array<{ label: number, n: number, mean: number }> {
  return meansByClass(labels, softmaxLogProbs(shape, weights, rows, labels))
}

/**
 * Each label's mean of `values` (summed in the order given), by label: `counts[i]` is how
 * many units `values[i]` sums (default 1); a label counting none is left out.
 */
export function meansByClass (labels: readonly number[], values: ArrayLike<number>, counts?: readonly number[]): Array<{ label: number, n: number, mean: number }> {
  const sums = new Map<number, { n: number, sum: number }>()
  labels.forEach((label, i) => {
    const class_ = sums.get(label) ?? { n: 0, sum: 0 }
    class_.n += counts?.[i] ?? 1
    class_.sum += values[i] as number
    sums.set(label, class_)
  })
  return [...sums].filter(([, { n }]) => n > 0).sort(([a], [b]) => a - b).map(([label, { n, sum }]) => ({ label, n, mean: sum / n }))
}
