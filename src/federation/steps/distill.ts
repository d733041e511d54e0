import { BackendUnavailableError, NothingToDistilError, UntaughtError } from '../../core/errors.ts'
import type { StepContext, StepOptions } from '../context.ts'
import { distil, type Distillation } from '../distill.ts'

export type DistilContext = Pick<StepContext, 'name' | 'task' | 'teacher' | 'held' | 'timer' | 'logger' | 'autoVote'>

/**
 * Asks my teacher about my questions that have no answer yet, validation questions first
 * (I cannot judge peers without them), up to `limit` questions or until the budget is spent.
 */
export async function distill (ctx: DistilContext, { limit }: { limit?: number }, options: StepOptions = {}): Promise<Distillation> {
  const { task, teacher, held } = ctx
  const teaching = task.teaching
  if (teaching === undefined) throw new NothingToDistilError(`the ${task.name} task learns from its labels: there is nothing to distil`)
  if (teacher === undefined) throw new NothingToDistilError(`${ctx.name} has no teacher to distil from`)
  const { val, train } = held.shard
  const { examples, report } = await ctx.timer.time('distill', () => distil(teaching, [...val, ...train], teacher.cache, {
    limit, maxTokens: teacher.maxTokens, failed: held.unanswerable, signal: options.signal
  }))
  held.shard = { val: examples.slice(0, val.length), train: examples.slice(val.length) }
  // My validation set changed, so the models' scores on it must be measured again.
  if (held.global !== undefined) held.global.judged = undefined
  if (held.initial !== undefined) held.initial.judged = undefined
  held.scores.clear()
  ctx.logger.info(`${ctx.name} distilled`, { ...report })
  return report
}

/**
 * The autopilot distils everything it can before it first trains or judges; an agent decides itself.
 * A teacher that does not answer now (BackendUnavailableError) costs this round its distillation,
 * with a warning, not the run: it goes on with the answers it has and asks again next time.
 */
export async function autoDistil (ctx: DistilContext, options: StepOptions = {}): Promise<void> {
  if (!ctx.autoVote || distillable(ctx) === 0) return
  try {
    await distill(ctx, {}, options)
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err
    ctx.logger.warn(`${ctx.name} could not reach its teacher; it goes on without distilling this time and asks again next time`, { reason: err.message, undistilled: undistilled(ctx) })
  }
}

/** Refuses work that needs some of `examples` answered by my teacher while none is (tasks learned by distillation). */
export function assertTaught (ctx: Pick<StepContext, 'task'>, examples: unknown[], kind: string, remedy: string): void {
  const teaching = ctx.task.teaching
  if (teaching !== undefined && !examples.some(e => teaching.taught(e))) throw new UntaughtError(`none of my ${examples.length} ${kind} questions has a teacher's answer: ${remedy}`)
}

/** My questions still without a teacher's answer (0 for tasks that learn from labels). */
export function undistilled ({ task, held }: Pick<StepContext, 'task' | 'held'>): number {
  const teaching = task.teaching
  if (teaching === undefined) return 0
  return [...held.shard.val, ...held.shard.train].filter(e => !teaching.taught(e) && !held.unanswerable.has(teaching.question(e))).length
}

/** My unanswered questions, if my budget still pays for one more answer; else 0. */
export function distillable (ctx: Pick<StepContext, 'task' | 'held' | 'teacher'>): number {
  const teacher = ctx.teacher
  return teacher !== undefined && teacher.cache.remaining >= teacher.maxTokens ? undistilled(ctx) : 0
}

/** What my teacher cost so far. */
export interface TeacherUse { asked: number, cached: number, tokens: number, undistilled: number }

export function teacherUse (ctx: Pick<StepContext, 'task' | 'held' | 'teacher'>): TeacherUse | undefined {
  const teacher = ctx.teacher?.cache
  return teacher === undefined ? undefined : { asked: teacher.misses, cached: teacher.hits, tokens: teacher.spent, undistilled: undistilled(ctx) }
}
