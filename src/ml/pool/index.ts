import { trainSoftmax } from '../sparse-softmax.ts'
import { TrainPool } from './pool.ts'

/** How tasks train their sparse softmax: trainSoftmax's signature, wherever it runs. */
export type SoftmaxTrainer = typeof trainSoftmax

export interface Trainer {
  train: SoftmaxTrainer
  /** True where training runs off this thread, so several members' training may overlap. */
  readonly parallel: boolean
  close(): Promise<void>
}

/**
 * Training on this thread (`workers` 1: trainSoftmax as called directly) or on a pool of
 * that many worker threads (pool.ts). Either gives the same weights bit for bit.
 */
export function createTrainer ({ workers }: { workers: number }): Trainer {
  if (workers === 1) return { train: trainSoftmax, parallel: false, close: async () => {} }
  const pool = new TrainPool({ size: workers })
  return { train: pool.train, parallel: true, close: async () => { await pool.close() } }
}
