import { z } from 'zod'
import { BlockId } from '../core/records.ts'

/**
 * What wakes an agent. Each event reaches the model as one message: a line a person can
 * read, then `EVENT {json}` so any model (and the protocol policy) can act on it exactly.
 */
/** Questions still without a teacher's answer while budget remains (tasks learned by distillation). */
const distillable = z.number().int().positive().optional()

export const AgentEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('round-open'), round: z.number().int().positive(), distillable }).strict(),
  z.object({ type: z.literal('proposal'), round: z.number().int().positive(), proposal: BlockId, proposer: z.string().min(1).max(255), distillable }).strict()
])
export type AgentEvent = z.infer<typeof AgentEvent>

/** The kinds of event an agent wakes to. */
export const EVENT_TYPES: ReadonlyArray<AgentEvent['type']> = AgentEvent.options.map(o => o.shape.type.value)

const MARK = 'EVENT '

/**
 * The event's message. `fitting` names the tools whose authors declared they help with this
 * kind of event (defineTool `events`): a small model reads the event far more closely than
 * the tool list, and does not connect a tool's "use it when" to the event on its own. It is
 * named, not called: the model still chooses.
 */
export function describeEvent (event: AgentEvent, { fitting = [] }: { fitting?: readonly string[] } = {}): string {
  const line = event.type === 'round-open'
    ? `Round ${event.round} is open. Decide whether to train and propose an update.`
    : `${event.proposer} proposed update ${event.proposal} for round ${event.round}. Decide how to judge it.`
  const teacher = event.distillable === undefined ? '' : ` ${event.distillable} of your questions have no teacher's answer yet and your teacher budget is not spent: distill them first.`
  const tools = fitting.length === 0 ? '' : ` Tools whose "use it when" fits this event: ${fitting.join(', ')}.`
  return `${line}${teacher}${tools}\n${MARK}${JSON.stringify(event)}`
}

/** The event a message carries, if it carries one. */
export function parseEvent (text: string): AgentEvent | undefined {
  const line = text.split('\n').find(l => l.startsWith(MARK))
  if (line === undefined) return undefined
  try {
    const parsed = AgentEvent.safeParse(JSON.parse(line.slice(MARK.length)))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
