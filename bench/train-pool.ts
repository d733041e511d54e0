import { parseArgs } from 'node:util'
import { packJob, unpackJob } from '../src/ml/pool/job.ts'
import { TrainPool } from '../src/ml/pool/pool.ts'
import { trainSoftmax } from '../src/ml/sparse-softmax.ts'
import { loadTask, TaskConfig } from '../src/ml/task.ts'

/**
 * What sending one member's training to a worker costs: the job's bytes, packing it
 * (copying rows, labels and base weights into flat arrays) and unpacking it, and one job's
 * wall time on this thread against in a warm worker (transfer both ways included).
 * `node bench/train-pool.ts [--task classify|ner] [--agents 5]`; agent-1's shard of round 1.
 */
const { values } = parseArgs({ options: { task: { type: 'string', default: 'classify' }, agents: { type: 'string', default: '5' } } })
const calls: Array<Parameters<typeof trainSoftmax>> = []
const task = await loadTask(TaskConfig.parse({ kind: values.task }), { trainer: async (...args) => { calls.push(args); return trainSoftmax(...args) } })
const shard = task.shards(Number(values.agents), { seed: 11, partition: 'iid' })[0]
if (shard === undefined) throw new Error('no shard')
const base = task.initialWeights(11)
const t0 = performance.now()
await task.train(base, shard, { seed: 11, round: 1 })
const hereMs = performance.now() - t0
const args = calls[0] as Parameters<typeof trainSoftmax>

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number
const timed = (fn: () => void, n = 7): number => median(Array.from({ length: n }, () => { const s = performance.now(); fn(); return performance.now() - s }))
let bytes = 0
const packMs = timed(() => { bytes = packJob(0, ...args).transfer.reduce((n, b) => n + b.byteLength, 0) })
const { job } = packJob(0, ...args)
const unpackMs = timed(() => { unpackJob(job) })

const pool = new TrainPool({ size: 1 })
const s1 = performance.now()
await pool.train(...args)
const coldMs = performance.now() - s1
const s2 = performance.now()
await pool.train(...args)
const warmMs = performance.now() - s2
await pool.close()
task.dispose()
console.log(JSON.stringify({ task: values.task, rows: args[2].length, jobMiB: +(bytes / 2 ** 20).toFixed(2), packMs: +packMs.toFixed(1), unpackMs: +unpackMs.toFixed(1), trainHereMs: Math.round(hereMs), poolColdMs: Math.round(coldMs), poolWarmMs: Math.round(warmMs) }))
