import { z } from 'zod'
import { silentLogger, type Logger } from '../core/logger.ts'
import { mixSeed } from '../data/rng.ts'
import { aggregate } from '../ml/aggregate/index.ts'
import { initBackend } from '../ml/backend.ts'
import { evalExamples, loadTask, type Shard, type Task } from '../ml/task.ts'
import { createTeacher } from '../teachers/index.ts'
import { applyDelta, weightsSha256, type Weights } from '../ml/weights.ts'
import { Conduct } from './attacks.ts'
import { memberSeed, type RunConfig } from './config.ts'
import { distil } from './distill.ts'
import { withMomentum } from './merge.ts'

export const BaselineKind = z.enum(['centralized', 'fedavg', 'local'])
export type BaselineKind = z.infer<typeof BaselineKind>

export interface BaselineRound {
  round: number
  metric: { name: string, value: number }
  details: Record<string, number>
}

export interface BaselineReport {
  kind: BaselineKind
  seed: number
  backend: string
  rounds: BaselineRound[]
  modelHash: string
  wallSeconds: number
}

export interface BaselineOptions {
  logger?: Logger
  onRound?: (r: BaselineRound) => void
  /** Called with the final model while the task is still loaded, for callers that score it further. */
  onModel?: (weights: Weights, task: Task) => Promise<void>
  /** 1-based members that take no part (fedavg): the federation as it would be with them simply absent. */
  absent?: readonly number[]
  /**
   * The first round they are absent from (default 1). A member whose attack starts in a later
   * round behaved until then and had its updates merged; the federation without it is the one
   * where it took part honestly until that round.
   */
  absentFrom?: number
}

/**
 * The references a federation is judged against, on the same data, seeds and rounds (each
 * FedAvg member trains as the same member of a federation does, so a federation that
 * accepts every update ends where FedAvg does):
 * `centralized` trains one model on every agent's (honest) data pooled; `fedavg` has every
 * agent train each round and merges all updates with the configured rule and momentum, with no vote
 * (hostile agents included, as configured); `local` is agent 1 alone on its own share.
 * Tasks learned by distillation ask the configured teacher every question first, with no
 * budget: the references get everything a teacher can tell.
 */
export async function runBaseline (kind: BaselineKind, config: RunConfig, options: BaselineOptions = {}): Promise<BaselineReport> {
  const started = performance.now()
  const logger = options.logger ?? silentLogger
  const backend = await initBackend({ logger })
  const task = await loadTask(config.task, { logger })
  try {
    const shards = await teach(task, task.shards(config.agents, { seed: config.seed, partition: config.partition.kind, alpha: config.partition.alpha }), config)
    let global = task.initialWeights(config.seed)
    const rounds: BaselineRound[] = []
    const score = async (round: number, weights: Weights): Promise<void> => {
      const e = await task.evaluate(weights, evalExamples(task, config.evalSplit))
      const r = { round, metric: { name: e.metricName, value: e.metric }, details: e.details }
      rounds.push(r)
      options.onRound?.(r)
    }
    await score(0, global)
    const pooled: Shard = { train: shards.flatMap(s => s.train), val: shards.flatMap(s => s.val) }
    const conducts = shards.map((_, i) => new Conduct(task, config.attacks.find(a => a.agent === i + 1), memberSeed(config, i)))
    let step: Weights | undefined
    for (let round = 1; round <= config.rounds; round++) {
      if (kind === 'centralized' || kind === 'local') {
        global = (await task.train(global, kind === 'local' ? shards[0] as Shard : pooled, { seed: mixSeed(config.seed, round) })).weights
      } else {
        const updates = []
        const seen = []
        for (const [i, shard] of shards.entries()) {
          if (options.absent?.includes(i + 1) === true && round >= (options.absentFrom ?? 1)) continue
          const update = await (conducts[i] as Conduct).update(shard, global, round, seen)
          seen.push(update.delta)
          updates.push(update)
        }
        // In the federation's merge order (by the delta's content hash: FederationState.accepted), so the float sums agree.
        const key = new Map(updates.map(u => [u, weightsSha256(u.delta)]))
        updates.sort((a, b) => (key.get(a) as string) < (key.get(b) as string) ? -1 : 1)
        step = withMomentum(aggregate(updates, { rule: config.aggregation }), step, config.momentum)
        global = applyDelta(global, step)
      }
      await score(round, global)
    }
    await options.onModel?.(global, task)
    return { kind, seed: config.seed, backend: backend.backend, rounds, modelHash: weightsSha256(global), wallSeconds: (performance.now() - started) / 1000 }
  } finally {
    task.dispose()
  }
}

/** Shards whose questions carry the configured teacher's answers (unchanged for tasks learned from labels). */
async function teach (task: Task, shards: Shard[], config: RunConfig): Promise<Shard[]> {
  const teaching = task.teaching
  if (teaching === undefined) return shards
  const teacher = await createTeacher(config.teacher, teaching.pairs)
  const ask = async (examples: unknown[]): Promise<unknown[]> => (await distil(teaching, examples, teacher, { maxTokens: config.teacher.maxTokens })).examples
  const taught = []
  for (const s of shards) taught.push({ train: await ask(s.train), val: await ask(s.val) })
  return taught
}
