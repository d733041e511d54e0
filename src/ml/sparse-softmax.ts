import * as tf from '@tensorflow/tfjs'
import { InvalidWeightsError } from '../core/errors.ts'
import type { SparseVector } from '../data/features.ts'
import { mixSeed, Rng } from '../data/rng.ts'
import { assertCompatible, type Weights } from './weights.ts'

/**
 * Sparse features → optional hidden ReLU layer → softmax: the model under the classify
 * and NER tasks. Inputs stay sparse (see sparseMatMul), so wide hashed features are cheap. Trained with Adam in a hand-written loop over seeded batches, so a seed
 * fixes the result bit for bit; every tensor is disposed (tests check tf.memory()).
 */
export interface SoftmaxShape {
  features: number
  hidden: number
  classes: number
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
  signal?: AbortSignal
  onEpoch?: (epoch: number, loss: number) => void
}

function layers (shape: SoftmaxShape): Array<[number, number]> {
  return shape.hidden === 0 ? [[shape.features, shape.classes]] : [[shape.features, shape.hidden], [shape.hidden, shape.classes]]
}

const names = (shape: SoftmaxShape): string[] => layers(shape).flatMap((_, l) => [`dense${l}.kernel`, `dense${l}.bias`])

/** Glorot-uniform kernels and zero biases from a seeded stream, tensors in name order. */
export function initSoftmax (shape: SoftmaxShape, seed: number): Weights {
  const rng = new Rng(mixSeed(seed, 0x1417))
  const w: Weights = new Map()
  layers(shape).forEach(([fanIn, fanOut], l) => {
    const limit = Math.sqrt(6 / (fanIn + fanOut))
    w.set(`dense${l}.kernel`, { shape: [fanIn, fanOut], data: Float32Array.from({ length: fanIn * fanOut }, () => (2 * rng.next() - 1) * limit) })
    w.set(`dense${l}.bias`, { shape: [fanOut], data: new Float32Array(fanOut) })
  })
  return new Map([...w].sort(([a], [b]) => a < b ? -1 : 1))
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

function forward (params: tf.Tensor[], x: SparseBatch): tf.Tensor2D {
  let h = tf.add(sparseMatMul(params[0] as tf.Tensor, x), params[1] as tf.Tensor1D) as tf.Tensor2D
  for (let l = 1; l < params.length / 2; l++) {
    h = tf.add(tf.matMul(tf.relu(h), params[2 * l] as tf.Tensor2D), params[2 * l + 1] as tf.Tensor1D)
  }
  return h
}

/** Local training from `base`; returns the new weights and the last epoch's mean loss. */
export async function trainSoftmax (shape: SoftmaxShape, base: Weights, rows: readonly SparseVector[], labels: readonly number[], options: SoftmaxTraining): Promise<{ weights: Weights, loss: number }> {
  assertCompatible(base, initSoftmax(shape, 0))
  const rng = new Rng(options.seed)
  const params = toTensors(shape, base).map(t => { const v = tf.variable(t); t.dispose(); return v })
  const optimizer = tf.train.adam(options.learningRate, 0.9, 0.999, options.epsilon ?? 1e-7)
  let loss = 0
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      options.signal?.throwIfAborted()
      const order = rng.shuffle(rows.map((_, i) => i))
      let sum = 0
      for (let i = 0; i < order.length; i += options.batchSize) {
        const batch = order.slice(i, i + options.batchSize)
        const cost = tf.tidy(() => {
          const x = sparseBatch(batch.map(j => rows[j] as SparseVector))
          const y = targets(batch, labels, shape.classes, options.soft)
          return optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(params, x)) as tf.Scalar, true) as tf.Scalar
        })
        sum += (await cost.data())[0] as number * batch.length
        cost.dispose()
      }
      loss = sum / Math.max(1, rows.length)
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

/** The most likely class of each row. */
export function predictSoftmax (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[]): number[] {
  const out: number[] = []
  withBatches(shape, weights, rows, (params, x) => {
    const ids = tf.tidy(() => forward(params, x).argMax(1))
    out.push(...(ids.dataSync() as Int32Array))
    ids.dispose()
  })
  return out
}

/** Every class's logit for each row, row-major (rows × classes): for decoders that constrain the choice. */
export function softmaxLogits (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[]): Float32Array {
  const out = new Float32Array(rows.length * shape.classes)
  let at = 0
  withBatches(shape, weights, rows, (params, x) => {
    const logits = tf.tidy(() => forward(params, x))
    out.set(logits.dataSync() as Float32Array, at)
    at += logits.size
    logits.dispose()
  })
  return out
}

/** Mean log-probability of each row's label (≤ 0; higher is better), e.g. of a teacher's tokens under teacher forcing. */
export function softmaxLogLikelihood (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[], labels: readonly number[]): number {
  if (rows.length === 0) return 0
  let sum = 0
  let at = 0
  withBatches(shape, weights, rows, (params, x) => {
    const n = x.size
    const picked = tf.tidy(() => {
      const logp = tf.logSoftmax(forward(params, x))
      return tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(labels.slice(at, at + n), 'int32'), shape.classes)))
    })
    sum += (picked.dataSync() as Float32Array)[0] as number
    picked.dispose()
    at += n
  })
  return sum / rows.length
}

/** Runs `fn` over batches of 512 rows with the weights loaded once, disposing everything. */
function withBatches (shape: SoftmaxShape, weights: Weights, rows: readonly SparseVector[], fn: (params: tf.Tensor[], x: SparseBatch) => void): void {
  const params = toTensors(shape, weights)
  try {
    for (let i = 0; i < rows.length; i += 512) {
      const x = sparseBatch(rows.slice(i, i + 512))
      try { fn(params, x) } finally { tf.dispose([x.feature, x.row, x.value]) }
    }
  } finally {
    tf.dispose(params)
  }
}
