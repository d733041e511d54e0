import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import * as tf from '@tensorflow/tfjs'
import { BadPoolMessageError, TrainBackendMismatchError, TrainPoolClosedError, TrainWorkerCrashedError } from '../../core/errors.ts'
import type { SparseVector } from '../../data/features.ts'
import type { SoftmaxShape, SoftmaxTraining, trainSoftmax } from '../sparse-softmax.ts'
import { initBackend } from '../backend.ts'
import { assertCompatible, type Weights } from '../weights.ts'
import { packJob, unpackWeights, WorkerReply } from './job.ts'
import { rebuildError } from './rebuild-error.ts'

export interface TrainPoolOptions {
  /** Worker threads, each training one job at a time. @default os.availableParallelism() */
  size?: number
  /** The worker's module. @default ./worker.ts */
  worker?: URL
}

interface Job {
  id: number
  /** trainSoftmax's arguments, packed only once a worker takes the job: a waiting job holds no copy of its base. */
  args: Parameters<typeof trainSoftmax>
  resolve: (result: { weights: Weights, loss: number }) => void
  reject: (err: unknown) => void
  /** Stops listening to the caller's signal. */
  release: () => void
}

interface Slot {
  worker: Worker
  job?: Job
  /** Set when the pool stops the worker itself (its job already settled): its exit is no crash. */
  retired?: true
  /** Its uncaught error, if it threw one before exiting. */
  fault?: Error
}

/**
 * Worker threads that run trainSoftmax calls, so members of one process train on several
 * cores at once. `train` takes trainSoftmax's arguments and gives its result bit for bit
 * (the same code on the same backend; test/ml/train-pool.test.ts compares the bytes).
 * Workers start on demand and stay for the next job; a worker holds the process open only
 * while it has a job, so an unclosed pool never hangs it. A worker that dies fails its job
 * with TrainWorkerCrashedError and is replaced; an aborted job's worker is stopped and
 * replaced; close() fails what is left with TrainPoolClosedError.
 */
export class TrainPool {
  readonly size: number
  readonly #script: URL
  readonly #slots = new Set<Slot>()
  readonly #waiting: Job[] = []
  #ids = 0
  #closed = false

  constructor (options: TrainPoolOptions = {}) {
    this.size = options.size ?? availableParallelism()
    if (!Number.isInteger(this.size) || this.size < 1) throw new RangeError(`a training pool needs at least one worker, not ${this.size}`)
    this.#script = options.worker ?? new URL('./worker.ts', import.meta.url)
  }

  /** trainSoftmax in a worker: the same arguments, the same result, the same error classes. */
  readonly train = async (shape: SoftmaxShape, base: Weights, rows: readonly SparseVector[], labels: readonly number[], options: SoftmaxTraining): Promise<{ weights: Weights, loss: number }> => {
    await initBackend() // as the workers do, so that this thread, where nothing chose one yet, agrees with them
    if (this.#closed) throw new TrainPoolClosedError('the training pool is closed')
    options.signal?.throwIfAborted()
    return new Promise((resolve, reject) => {
      const entry: Job = { id: this.#ids++, args: [shape, base, rows, labels, options], resolve, reject, release: () => {} }
      const signal = options.signal
      if (signal !== undefined) {
        const onAbort = (): void => { this.#abort(entry, signal.reason) }
        signal.addEventListener('abort', onAbort, { once: true })
        entry.release = () => { signal.removeEventListener('abort', onAbort) }
      }
      this.#waiting.push(entry)
      this.#dispatch()
    })
  }

  /** Fails every waiting and running job and stops every worker. */
  async close (): Promise<void> {
    this.#closed = true
    for (const entry of this.#waiting.splice(0)) this.#settle(entry, new TrainPoolClosedError('the training pool closed before this job started'))
    await Promise.all([...this.#slots].map(async slot => {
      if (slot.job !== undefined) this.#settle(slot.job, new TrainPoolClosedError('the training pool closed while this job ran'))
      await this.#retire(slot)
    }))
  }

  #dispatch (): void {
    while (!this.#closed && this.#waiting.length > 0) {
      const slot = [...this.#slots].find(s => s.job === undefined && s.retired === undefined) ?? (this.#slots.size < this.size ? this.#spawn() : undefined)
      if (slot === undefined) return
      const entry = this.#waiting.shift() as Job
      try {
        const { job, transfer } = packJob(entry.id, ...entry.args)
        slot.worker.postMessage(job, transfer)
      } catch (err) {
        this.#settle(entry, err)
        continue
      }
      slot.job = entry
      slot.worker.ref()
    }
  }

  #spawn (): Slot {
    const worker = new Worker(this.#script)
    const slot: Slot = { worker }
    worker.unref()
    worker.on('message', (message: unknown) => { this.#reply(slot, message) })
    worker.on('error', (err: Error) => { slot.fault = err })
    worker.on('exit', code => { this.#exited(slot, code) })
    this.#slots.add(slot)
    return slot
  }

  #reply (slot: Slot, message: unknown): void {
    const entry = slot.job
    if (entry === undefined) return
    const parsed = WorkerReply.safeParse(message)
    if (!parsed.success || (parsed.data.id !== undefined && parsed.data.id !== entry.id)) {
      this.#settle(entry, new BadPoolMessageError(`a training worker's reply does not parse as one for its job: ${parsed.error?.issues[0]?.message ?? 'another job\'s id'}`))
      void this.#retire(slot)
      return
    }
    const reply = parsed.data
    if (reply.kind === 'epoch') { entry.args[4].onEpoch?.(reply.epoch, reply.loss); return }
    if (reply.kind === 'failed') this.#settle(entry, rebuildError(reply.error))
    else this.#finish(entry, unpackWeights(reply.weights), reply.loss, reply.backend)
    slot.job = undefined
    slot.worker.unref()
    this.#dispatch()
  }

  /**
   * The weights that came back must be the model that went (same tensors, same shapes),
   * trained on this thread's backend: a worker where a native backend does not load falls
   * back to another, whose arithmetic differs.
   */
  #finish (entry: Job, weights: Weights, loss: number, backend: string): void {
    try {
      if (backend !== tf.getBackend()) throw new TrainBackendMismatchError(`a training worker trained on TF.js backend ${backend}, this thread on ${tf.getBackend()}: the weights would differ from training here (train with one worker)`)
      assertCompatible(weights, entry.args[1])
      entry.release()
      entry.resolve({ weights, loss })
    } catch (err) {
      this.#settle(entry, err)
    }
  }

  #abort (entry: Job, reason: unknown): void {
    const waiting = this.#waiting.indexOf(entry)
    if (waiting >= 0) this.#waiting.splice(waiting, 1)
    const slot = [...this.#slots].find(s => s.job === entry)
    this.#settle(entry, reason)
    if (slot !== undefined) void this.#retire(slot).then(() => { this.#dispatch() })
  }

  #settle (entry: Job, err: unknown): void {
    entry.release()
    entry.reject(err)
  }

  /** Stops a worker whose job is settled already, and forgets it: the next job starts another. */
  async #retire (slot: Slot): Promise<void> {
    slot.retired = true
    slot.job = undefined
    this.#slots.delete(slot)
    await slot.worker.terminate()
  }

  /** A worker that exited unasked: its job fails, and a new worker takes the next one. */
  #exited (slot: Slot, code: number): void {
    if (slot.retired === true) return
    this.#slots.delete(slot)
    if (slot.job !== undefined) {
      const cause = slot.fault === undefined ? '' : `: ${slot.fault.message}`
      this.#settle(slot.job, new TrainWorkerCrashedError(`a training worker exited with code ${code} during its job${cause}`, { cause: slot.fault }))
    }
    this.#dispatch()
  }
}
