import type { RunnableConfig } from '@langchain/core/runnables'
import { AIMessage, HumanMessage, type BaseMessage } from '@langchain/core/messages'
import { emptyCheckpoint, type BaseCheckpointSaver } from '@langchain/langgraph-checkpoint'

/**
 * What an agent's memory goes through, deterministically (fixed ids and times): checkpoints
 * whose conversation grows by a message each, each followed by a task's pending write. The
 * files in test/fixtures/memory were written by earlier versions of the saver from these
 * steps, so a test can compare what this version reads from them with what it makes itself.
 */
export async function agentSteps (saver: BaseCheckpointSaver, options: { from?: number, to?: number, thread?: string, pendingWrites?: boolean } = {}): Promise<RunnableConfig> {
  const { from = 1, to = 5, thread = 'did:key:z6MkAgent', pendingWrites = true } = options
  const messages: BaseMessage[] = []
  let config: RunnableConfig = { configurable: { thread_id: thread, checkpoint_ns: '' } }
  for (let i = 1; i <= to; i++) {
    messages.push(i % 2 === 1
      ? new HumanMessage({ id: `m${i}`, content: `A peer proposed update ${i}; judge it.` })
      : new AIMessage({ id: `m${i}`, content: '', tool_calls: [{ id: `call-${i}`, name: 'vote', args: { proposal: `p${i}`, accept: true } }] }))
    if (i < from) continue
    const checkpoint = { ...emptyCheckpoint(), id: checkpointId(i), ts: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), channel_values: { messages: [...messages], steps: i }, channel_versions: { messages: i, steps: i } }
    config = await saver.put(from > 1 && i === from ? { configurable: { thread_id: thread, checkpoint_ns: '', checkpoint_id: checkpointId(i - 1) } } : config, checkpoint, { source: 'loop', step: i, parents: {} }, { messages: i, steps: i })
    if (pendingWrites) await saver.putWrites(config, [['messages', [new AIMessage({ id: `w${i}`, content: `pending ${i}` })]]], `task-${i}`)
  }
  return config
}

const checkpointId = (i: number): string => `1f000000-0000-6000-8000-${String(i).padStart(12, '0')}`
