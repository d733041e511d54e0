import { parentPort } from 'node:worker_threads'
import * as tf from '@tensorflow/tfjs'
import { BadPoolMessageError } from '../../core/errors.ts'
import { initBackend } from '../backend.ts'
import { trainSoftmax } from '../sparse-softmax.ts'
import { packWeights, TrainJob, unpackJob, type WorkerReply } from './job.ts'

/**
 * A training worker: takes one job at a time from the pool (pool.ts), trains it with the
 * same trainSoftmax on its own TF.js backend, and posts progress and then the weights
 * (transferred) or the failure by name, for the pool to rebuild as the same error class.
 */
if (parentPort === null) throw new Error('worker.ts runs as a worker thread of a TrainPool')
const port = parentPort
const ready = initBackend()

port.on('message', (message: unknown) => { void serve(message) })

async function serve (message: unknown): Promise<void> {
  const id = (message as { id?: unknown })?.id
  const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []): void => { port.postMessage(reply, transfer) }
  try {
    await ready
    const parsed = TrainJob.safeParse(message)
    if (!parsed.success) throw new BadPoolMessageError(`a training job that does not parse: ${parsed.error.issues[0]?.message ?? ''}`)
    const { shape, base, rows, labels, options } = unpackJob(parsed.data)
    const { weights, loss } = await trainSoftmax(shape, base, rows, labels, { ...options, onEpoch: (epoch, l) => { post({ kind: 'epoch', id: parsed.data.id, epoch, loss: l }) } })
    const packed = packWeights(weights)
    post({ kind: 'done', id: parsed.data.id, weights: packed, loss, backend: tf.getBackend() }, [packed.data.buffer as ArrayBuffer])
  } catch (err) {
    const error = err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) }
    post({ kind: 'failed', ...(typeof id === 'number' ? { id } : {}), error })
  }
}
