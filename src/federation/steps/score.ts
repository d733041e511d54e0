import type { ModelRef } from '../../core/records.ts'
import { judgeOf } from '../../ml/task.ts'
import { fetchModel } from '../content.ts'
import type { StepContext, StepOptions } from '../context.ts'
import { assertTaught } from './distill.ts'

/**
 * My judge's score of a model from the store on my validation examples: what my votes call
 * "before" when that model was the global one. Reads only; for questions about the record.
 */
export async function scoreModel (ctx: Pick<StepContext, 'store' | 'task' | 'held' | 'timer'>, { model }: { model: ModelRef }, options: StepOptions = {}): Promise<ModelScore> {
  assertTaught(ctx, ctx.held.shard.val, 'validation', 'distil before measuring')
  const known = ctx.held.scores.get(model.sha256)
  if (known !== undefined) return known
  const weights = await ctx.timer.time('fetchVerify', () => fetchModel(ctx.store, model, options))
  const judge = judgeOf(ctx.task)
  const score = { metric: judge.name, value: await judge.score(weights, ctx.held.shard.val), examples: ctx.held.shard.val.length }
  ctx.held.scores.set(model.sha256, score)
  return score
}

/** A model's score by my judge (its metric's name) on my validation examples. */
export interface ModelScore { metric: string, value: number, examples: number }
