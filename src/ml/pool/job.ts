import { z } from 'zod'
import type { SparseVector } from '../../data/features.ts'
import type { SoftmaxShape, SoftmaxTraining } from '../sparse-softmax.ts'
import type { Weights } from '../weights.ts'

/**
 * What crosses the thread boundary for one trainSoftmax call, packed into a few flat typed
 * arrays: one structured-clone copy per call, and (for arrays packed afresh) none at all,
 * since they are transferred. Rows hold their values as given, so training in a worker
 * sees the same bits as training here.
 */

const int32 = z.instanceof(Int32Array)
const float32 = z.instanceof(Float32Array)
const count = z.number().int().nonnegative()

/** Named tensors as one buffer: `data` holds each tensor's values in `names` order. */
export const PackedWeights = z.object({
  names: z.array(z.string()),
  shapes: z.array(z.array(count)),
  data: float32
}).strict().superRefine((w, ctx) => {
  const total = w.shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0)
  if (w.names.length !== w.shapes.length || total !== w.data.length) ctx.addIssue({ code: 'custom', message: `${w.names.length} names, ${w.shapes.length} shapes and ${w.data.length} values do not match` })
})
export type PackedWeights = z.infer<typeof PackedWeights>

/** Rows as CSR: row r's features are indices[offsets[r] … offsets[r+1]). */
const PackedRows = z.object({ offsets: int32, indices: int32, values: float32 }).strict()
type PackedRows = z.infer<typeof PackedRows>

/** Soft targets as CSR over (class, probability); `has` marks rows that have any (a row with none keeps its label). */
const PackedSoft = z.object({ has: z.instanceof(Uint8Array), offsets: int32, classes: int32, probabilities: z.instanceof(Float64Array), weight: z.number() }).strict()

const Shape = z.object({
  features: count,
  hidden: count,
  classes: count,
  chain: z.object({ classes: count, first: z.array(z.boolean()), follows: z.array(z.array(z.boolean())) }).strict().optional()
}).strict()

/** SoftmaxTraining less what stays with the caller (its signal and epoch callback). */
const Settings = z.object({
  epochs: count,
  batchSize: count,
  learningRate: z.number(),
  epsilon: z.number().optional(),
  seed: z.number(),
  sequences: z.array(count).optional()
}).strict()

export const TrainJob = z.object({
  id: count,
  shape: Shape,
  base: PackedWeights,
  rows: PackedRows,
  labels: int32,
  settings: Settings,
  soft: PackedSoft.optional()
}).strict()
export type TrainJob = z.infer<typeof TrainJob>

/** A failure as the worker saw it: the pool rebuilds the error class from `name`. */
export const FailedJob = z.object({ name: z.string(), message: z.string() }).strict()

/** What a worker posts back: progress, then the trained weights or the failure. */
export const WorkerReply = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('epoch'), id: count, epoch: count, loss: z.number() }).strict(),
  /** `backend`: the TF.js backend that trained, which must be the asking thread's for the same bits. */
  z.object({ kind: z.literal('done'), id: count, weights: PackedWeights, loss: z.number(), backend: z.string() }).strict(),
  /** `id` absent: the job did not parse far enough to have one. */
  z.object({ kind: z.literal('failed'), id: count.optional(), error: FailedJob }).strict()
])
export type WorkerReply = z.infer<typeof WorkerReply>

export function packWeights (weights: Weights): PackedWeights {
  const names = [...weights.keys()]
  const tensors = [...weights.values()]
  const data = new Float32Array(tensors.reduce((n, t) => n + t.data.length, 0))
  let at = 0
  for (const t of tensors) { data.set(t.data, at); at += t.data.length }
  return { names, shapes: tensors.map(t => [...t.shape]), data }
}

/** Views into the one buffer: no copy. */
export function unpackWeights (packed: PackedWeights): Weights {
  const out: Weights = new Map()
  let at = 0
  packed.names.forEach((name, i) => {
    const shape = packed.shapes[i] as number[]
    const size = shape.reduce((a, b) => a * b, 1)
    out.set(name, { shape, data: packed.data.subarray(at, at + size) })
    at += size
  })
  return out
}

function packRows (rows: readonly SparseVector[]): PackedRows {
  const offsets = new Int32Array(rows.length + 1)
  rows.forEach((r, i) => { offsets[i + 1] = (offsets[i] as number) + r.indices.length })
  const indices = new Int32Array(offsets[rows.length] as number)
  const values = new Float32Array(indices.length)
  rows.forEach((r, i) => { indices.set(r.indices, offsets[i]); values.set(r.values, offsets[i]) })
  return { offsets, indices, values }
}

function unpackRows ({ offsets, indices, values }: PackedRows): SparseVector[] {
  return Array.from({ length: offsets.length - 1 }, (_, r) => ({ indices: indices.subarray(offsets[r], offsets[r + 1]), values: values.subarray(offsets[r], offsets[r + 1]) }))
}

function packSoft (soft: NonNullable<SoftmaxTraining['soft']>, rows: number): z.infer<typeof PackedSoft> {
  const has = new Uint8Array(rows)
  const offsets = new Int32Array(rows + 1)
  for (let r = 0; r < rows; r++) {
    const target = soft.targets[r]
    has[r] = target === undefined ? 0 : 1
    offsets[r + 1] = (offsets[r] as number) + (target?.length ?? 0)
  }
  const classes = new Int32Array(offsets[rows] as number)
  const probabilities = new Float64Array(classes.length)
  for (let r = 0; r < rows; r++) {
    (soft.targets[r] ?? []).forEach(([cls, p], k) => { classes[(offsets[r] as number) + k] = cls; probabilities[(offsets[r] as number) + k] = p })
  }
  return { has, offsets, classes, probabilities, weight: soft.weight }
}

function unpackSoft (soft: z.infer<typeof PackedSoft>): NonNullable<SoftmaxTraining['soft']> {
  const targets = Array.from(soft.has, (has, r) => {
    if (has === 0) return undefined
    const pairs: Array<[number, number]> = []
    for (let k = soft.offsets[r] as number; k < (soft.offsets[r + 1] as number); k++) pairs.push([soft.classes[k] as number, soft.probabilities[k] as number])
    return pairs
  })
  return { targets, weight: soft.weight }
}

/** A trainSoftmax call as a job, and the buffers that may be transferred (all but the base weights' copy are packed afresh). */
export function packJob (id: number, shape: SoftmaxShape, base: Weights, rows: readonly SparseVector[], labels: readonly number[], options: SoftmaxTraining): { job: TrainJob, transfer: ArrayBuffer[] } {
  const { epochs, batchSize, learningRate, epsilon, seed, sequences } = options
  const job: TrainJob = {
    id,
    shape: { features: shape.features, hidden: shape.hidden, classes: shape.classes, ...(shape.chain === undefined ? {} : { chain: { classes: shape.chain.classes, first: [...shape.chain.first], follows: shape.chain.follows.map(f => [...f]) } }) },
    base: packWeights(base),
    rows: packRows(rows),
    labels: Int32Array.from(labels),
    settings: { epochs, batchSize, learningRate, seed, ...(epsilon === undefined ? {} : { epsilon }), ...(sequences === undefined ? {} : { sequences: [...sequences] }) },
    ...(options.soft === undefined ? {} : { soft: packSoft(options.soft, rows.length) })
  }
  const soft = job.soft === undefined ? [] : [job.soft.has, job.soft.offsets, job.soft.classes, job.soft.probabilities]
  const transfer = [job.base.data, job.rows.offsets, job.rows.indices, job.rows.values, job.labels, ...soft].map(a => a.buffer as ArrayBuffer)
  return { job, transfer }
}

/** A job as trainSoftmax's arguments again. */
export function unpackJob (job: TrainJob): { shape: SoftmaxShape, base: Weights, rows: SparseVector[], labels: number[], options: SoftmaxTraining } {
  return {
    shape: job.shape,
    base: unpackWeights(job.base),
    rows: unpackRows(job.rows),
    labels: Array.from(job.labels),
    options: { ...job.settings, ...(job.soft === undefined ? {} : { soft: unpackSoft(job.soft) }) }
  }
}
