import { AIMessage, type BaseMessage } from '@langchain/core/messages'
import type { Runnable } from '@langchain/core/runnables'
import { withDeadline } from '../src/core/abortable.ts'

/** A model call's bound when the agent names none: a slow CPU's Gemma 3 270M step took up to 250 s (docs/results/llm-judges.md). */
export const DEFAULT_LLM_TIMEOUT_MS = 300_000

/**
 * The model's answer, or an invalid one when its call fails or gives no answer within
 * `timeoutMs` (a stalled server): either way the step is retried, then goes to the policy.
 * Only the turn's own signal (a kill) ends the run.
 */
export async function ask (model: Runnable, messages: BaseMessage[], { signal, timeoutMs }: { signal?: AbortSignal, timeoutMs: number }): Promise<AIMessage | undefined> {
  try {
    return await withDeadline(timeoutMs, signal, async bounded => model.invoke(messages, { signal: bounded })) as AIMessage
  } catch (err) {
    if (signal?.aborted === true) throw err
    return new AIMessage({ content: '', invalid_tool_calls: [{ type: 'invalid_tool_call', id: 'error', name: undefined, args: undefined, error: `the model failed: ${(err as Error).message}` }] })
  }
}
